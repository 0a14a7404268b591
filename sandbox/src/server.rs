//! The accept loop: one hyper HTTP/1.1 connection task per socket, serving the axum router.
//!
//! We do not use `axum::serve` because two faults need control of the socket: "drop the
//! connection" closes it without writing a response (the gate cancels the connection's
//! [`ConnKill`] token and this task drops the connection), and "hang" must not keep `shutdown`
//! waiting forever (every connection task also stops when the sandbox shuts down).

use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Service;

use crate::gate::ConnKill;

/// Accepts until `shutdown` is cancelled; connection tasks are spawned on `tracker`.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "Sandbox accept failed; retrying.");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        // Small JSON responses must not wait for delayed ACKs.
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let kill = CancellationToken::new();
            let conn_kill = kill.clone();
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnKill(conn_kill.clone()));
                let mut router = router.clone();
                async move {
                    let resp: Result<_, Infallible> = router.call(req.map(Body::new)).await;
                    resp
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                result = conn => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "Sandbox connection ended with an error.");
                    }
                }
                () = kill.cancelled() => tracing::debug!("Dropped a connection (fault)."),
                () = shutdown.cancelled() => {}
            }
        });
    }
}
