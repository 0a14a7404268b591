//! Size limits on what the daemon reads from outside (DESIGN §10: "every input from outside …
//! is bounded in size"), where the property tests of `main.rs` do not already show them: a config
//! path that never ends, and a webhook body streamed without a length.

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::fresh_db;

/// Runs the binary, killing it after `within`; returns (exited in time, success, stderr).
fn run_bounded(args: &[&str], within: Duration) -> (bool, bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_omnistock"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn omnistock");
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    (
        status.is_some(),
        status.is_some_and(|s| s.success()),
        stderr,
    )
}

/// `--config /dev/zero`: every command, the daemon included, refuses it after the 1 MiB limit
/// instead of reading forever.
#[test]
fn an_endless_config_file_is_refused_not_read() {
    for args in [
        &["--config", "/dev/zero", "run"][..],
        &["--config", "/dev/zero", "check", "--skip-healthchecks"][..],
        &["--config", "/dev/zero", "status"][..],
    ] {
        let started = Instant::now();
        let (exited, ok, stderr) = run_bounded(args, Duration::from_secs(30));
        assert!(exited, "{args:?} still running after 30 s");
        assert!(!ok, "{args:?} succeeded");
        assert!(
            stderr.contains(&omnistock::config::MAX_CONFIG_BYTES.to_string()),
            "{args:?} names the limit: {stderr}"
        );
        assert!(started.elapsed() < Duration::from_secs(30));
    }
}

/// A webhook body streamed in chunks, with no length to refuse it by, is cut off at
/// `MAX_WEBHOOK_BYTES` with 413; nothing is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_webhook_past_the_limit_is_refused() {
    let db = fresh_db().await;
    let config = db.dir.path().join("omnistock.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndatabase = \"{}\"\nlisten = \"127.0.0.1:0\"\n\n[[locations]]\nid = \"main\"\n\n\
             [channels.shop]\ntype = \"shopify\"\nendpoint = \"http://127.0.0.1:9\"\n\
             access_token = \"shpat_x\"\nlocation_id = \"gid://shopify/Location/1\"\n\
             webhook_secret = \"whsec\"\n",
            db.url
        ),
    )
    .expect("config");
    let daemon = omnistock::daemon::Daemon::start(&config)
        .await
        .expect("daemon starts");
    let addr = daemon.http_addr;
    let limit = omnistock::http::webhooks::MAX_WEBHOOK_BYTES;
    let answer = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        s.write_all(
            b"POST /webhooks/shop HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              X-Shopify-Hmac-Sha256: AAAA\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        )
        .expect("head");
        let chunk = vec![b' '; 16 * 1024];
        let mut sent = 0usize;
        // Twice the limit, unless the server hangs up first.
        while sent < 2 * limit {
            let mut piece = format!("{:x}\r\n", chunk.len()).into_bytes();
            piece.extend_from_slice(&chunk);
            piece.extend_from_slice(b"\r\n");
            if s.write_all(&piece).is_err() {
                break;
            }
            sent += chunk.len();
        }
        let _ = s.write_all(b"0\r\n\r\n");
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .expect("client");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries")
        .fetch_one(daemon.shared.store.pool())
        .await
        .expect("count");
    assert_eq!(recorded, 0);
    daemon.shutdown().await;
}
