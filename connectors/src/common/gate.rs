//! The send gate: a last check, made immediately before a request goes on the wire, that the
//! caller may still send.
//!
//! The daemon pushes to a channel only while it holds the channel's lease. A process frozen for
//! longer than the lease (a stopped VM, `kill -STOP`, a long swap storm) wakes up in the middle of
//! whatever it was doing — often between building a batch and sending it, or inside a rate-limit
//! wait. By then another instance owns the channel and may already have pushed newer values; an
//! old batch sent now would overwrite them. The engine therefore runs every marketplace call of
//! a channel inside [`with_send_gate`] with a check of its local lease deadline, and
//! [`crate::common::http`] consults it right before sending: a closed gate means nothing is sent
//! and the call fails as [`ConnectorError::Transient`] ("not sent").
//!
//! The gate is task-local (tokio), so it follows a call through the connector's own awaits
//! without any connector knowing about leases. Code outside a gate (the CLI, tests) sends freely.

use std::future::Future;
use std::sync::Arc;

use crate::error::ConnectorError;

/// Answers "may this task still send?"; checked before every request.
pub type SendGate = Arc<dyn Fn() -> bool + Send + Sync>;

tokio::task_local! {
    static GATE: SendGate;
}

/// Runs `f` with `gate` consulted before each request it sends.
pub async fn with_send_gate<F: Future>(gate: SendGate, f: F) -> F::Output {
    GATE.scope(gate, f).await
}

/// Runs `f` inside `gate` when there is one.
pub async fn maybe_gated<F: Future>(gate: Option<SendGate>, f: F) -> F::Output {
    match gate {
        Some(g) => with_send_gate(g, f).await,
        None => f.await,
    }
}

/// The error of a request the gate held back: nothing reached the marketplace.
pub fn closed() -> ConnectorError {
    ConnectorError::Transient {
        status: None,
        message: "not sent: this process no longer holds the channel's lease".to_owned(),
    }
}

/// `Err` when the current task runs inside a gate that is closed now.
pub fn check() -> Result<(), ConnectorError> {
    match GATE.try_with(|g| g()) {
        Ok(false) => Err(closed()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_closed_gate_refuses_and_no_gate_allows() {
        assert!(check().is_ok(), "outside a gate everything may send");
        let open = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&open);
        let gate: SendGate = Arc::new(move || flag.load(Ordering::SeqCst));
        let r = with_send_gate(gate, async {
            let before = check();
            open.store(false, Ordering::SeqCst);
            tokio::task::yield_now().await;
            (before, check())
        })
        .await;
        assert!(r.0.is_ok());
        let err = r.1.expect_err("closed");
        assert!(err.to_string().contains("not sent"), "{err}");
        assert_eq!(err.class(), crate::ErrorClass::Transient);
    }
}
