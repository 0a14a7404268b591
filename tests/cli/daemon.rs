//! The daemon's life: admin HTTP, hot reload, single instance, clean shutdown.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{CATALOG, Merchant, SENTINEL_SECRET, closed_port, config_text, ebay_at};

/// A daemon child process; killed on drop if still running.
pub struct Running {
    pub child: Child,
    pub addr: String,
    pub log: std::path::PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits for the process to exit; returns its status.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// A free loopback port (bound and released; the daemon binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn http(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the admin API");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Polls `f` until it returns Some or the deadline passes.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub async fn spawn(m: &Merchant) -> Running {
    let log = m.db.dir.path().join(format!("daemon-{}.log", free_port()));
    let file = std::fs::File::create(&log).unwrap();
    let child = m
        .cmd()
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap();
    let addr = current_listen(m);
    let mut r = Running { child, addr, log };
    let addr = r.addr.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            break;
        }
        if let Some(status) = r.child.try_wait().unwrap() {
            panic!("daemon exited early ({status}):\n{}", r.log_text());
        }
        assert!(
            Instant::now() < deadline,
            "daemon did not listen:\n{}",
            r.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = &mut r;
    r
}

fn current_listen(m: &Merchant) -> String {
    let text = std::fs::read_to_string(&m.config).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("listen = \""))
        .map(|l| l.trim_end_matches('"').to_owned())
        .unwrap()
}

async fn merchant_on_port(extra_daemon: &str) -> (Merchant, u16) {
    let port = free_port();
    let extra = extra_daemon.to_owned();
    let m = Merchant::with(move |url| {
        config_text(url, &format!("127.0.0.1:{port}"), &extra, "buffer = 2")
    })
    .await;
    (m, port)
}

#[tokio::test]
async fn serves_health_metrics_and_status_then_stops_on_sigterm() {
    let (m, _) = merchant_on_port("").await;
    m.ok(&["import", &m.csv("c.csv", CATALOG)]);
    let mut d = spawn(&m).await;
    assert_eq!(
        http(&d.addr, "/healthz", None).await,
        (200, "ok\n".to_owned())
    );
    let (code, metrics) = http(&d.addr, "/metrics", None).await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("omnistock_channel_dirty_items{channel=\"ebay\",type=\"ebay\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE omnistock_config_reloads_total counter"),
        "{metrics}"
    );
    let (code, body) = http(&d.addr, "/api/status", None).await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"]["skus"], 3);
    assert_eq!(http(&d.addr, "/nope", None).await.0, 404);

    let started = Instant::now();
    d.signal("TERM");
    let status = d
        .wait_exit(Duration::from_secs(10))
        .expect("daemon stops within 10 s of SIGTERM");
    assert!(status.success(), "exit status {status}\n{}", d.log_text());
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "shutdown took {:?}",
        started.elapsed()
    );
    let log = d.log_text();
    assert!(log.contains("omnistock stopped"), "{log}");
    assert!(!log.contains(SENTINEL_SECRET), "secret in the log:\n{log}");
}

/// The engine's per-channel families; each must have a series labelled with the ebay channel.
const ENGINE_FAMILIES: [&str; 19] = [
    "omnistock_push_calls_total",
    "omnistock_push_items_total",
    "omnistock_push_failed_calls_total",
    "omnistock_push_superseded_total",
    "omnistock_channel_consecutive_failures",
    "omnistock_channel_lease_held",
    "omnistock_order_polls_total",
    "omnistock_order_poll_failures_total",
    "omnistock_orders_ingested_total",
    "omnistock_oversold_lines_total",
    "omnistock_order_last_poll_timestamp_seconds",
    "omnistock_connector_requests_total",
    "omnistock_connector_rate_limited_total",
    "omnistock_connector_errors_total",
    "omnistock_connector_token_refreshes_total",
    "omnistock_connector_budget_wait_seconds_total",
    "omnistock_connector_budget_pauses_total",
    "omnistock_rate_budget_per_second",
    "omnistock_connector_extra",
];

#[tokio::test]
async fn metrics_and_status_show_the_engine_of_each_channel() {
    // eBay at a port nothing listens on: the channel starts, its pushes fail and are counted.
    let listen = free_port();
    let unreachable = loop {
        let p = closed_port();
        if p != listen {
            break p;
        }
    };
    let m = Merchant::with(move |url| {
        ebay_at(
            &config_text(url, &format!("127.0.0.1:{listen}"), "", "buffer = 2"),
            &format!("http://127.0.0.1:{unreachable}"),
        )
    })
    .await;
    m.ok(&["import", &m.csv("c.csv", CATALOG)]);
    let d = spawn(&m).await;
    let failed_push = "omnistock_push_failed_calls_total{channel=\"ebay\",type=\"ebay\",class=";
    let metrics = eventually(
        "a failed push of the ebay channel is counted",
        Duration::from_secs(20),
        || async {
            let (_, body) = http(&d.addr, "/metrics", None).await;
            let counted = body
                .lines()
                .any(|l| l.starts_with(failed_push) && !l.ends_with(" 0"));
            let leased =
                body.contains("omnistock_channel_lease_held{channel=\"ebay\",type=\"ebay\"} 1");
            (counted && leased).then_some(body)
        },
    )
    .await;
    for name in ENGINE_FAMILIES {
        assert!(
            metrics.contains(&format!("# HELP {name} "))
                && metrics.contains(&format!("# TYPE {name} ")),
            "HELP/TYPE of {name}:\n{metrics}"
        );
        assert!(
            metrics.contains(&format!("{name}{{channel=\"ebay\",type=\"ebay\"")),
            "{name} for the ebay channel:\n{metrics}"
        );
    }
    for series in [
        "omnistock_push_items_total{channel=\"ebay\",type=\"ebay\",outcome=\"applied\"} 0",
        "omnistock_orders_ingested_total{channel=\"ebay\",type=\"ebay\",kind=\"new\"} 0",
        "omnistock_rate_budget_per_second{channel=\"ebay\",type=\"ebay\",operation=\"inventory\"}",
        "omnistock_channel_problem{channel=\"woo_shop\",type=\"woocommerce\"} 1",
        // The database-side families are still there.
        "omnistock_channel_dirty_items{channel=\"ebay\",type=\"ebay\"} 3",
    ] {
        assert!(metrics.contains(series), "{series}:\n{metrics}");
    }

    let (code, body) = http(&d.addr, "/api/status", None).await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ebay = &v["engine"]["channels"][0];
    assert_eq!(ebay["channel"], "ebay", "{v}");
    assert_eq!(ebay["lease_held"], true, "{v}");
    assert!(ebay["push"]["calls"].as_u64() >= Some(1), "{v}");
    assert!(ebay["connector"]["requests"].as_u64() >= Some(1), "{v}");
    assert!(ebay["last_error"].is_string(), "{v}");
    assert_eq!(v["engine"]["problems"][0]["channel"], "woo_shop", "{v}");
    assert_eq!(super::channel(&v["status"], "ebay")["dirty"], 3, "{v}");
    assert!(!body.contains(SENTINEL_SECRET), "secret in /api/status");
    assert!(!metrics.contains(SENTINEL_SECRET), "secret in /metrics");
}

#[tokio::test]
async fn hot_reload_applies_good_edits_and_refuses_bad_ones() {
    let (m, port) = merchant_on_port("").await;
    m.ok(&["import", &m.csv("c.csv", CATALOG)]);
    let d = spawn(&m).await;
    let url = m.db.url.clone();
    let listen = format!("127.0.0.1:{port}");

    // A bad edit: refused with its line, the daemon keeps serving on the last good config.
    let good = std::fs::read_to_string(&m.config).unwrap();
    m.write_config(&good.replace("buffer = 2", "buffer = 2, percnt = 50"));
    let status = eventually(
        "the bad edit is refused",
        Duration::from_secs(10),
        || async {
            let (_, body) = http(&d.addr, "/api/status", None).await;
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            (v["daemon"]["reloads"]["refused"] == 1).then_some(v)
        },
    )
    .await;
    let err = status["daemon"]["reloads"]["last_error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        err.contains("percnt") && err.contains("omnistock.toml:24:23:"),
        "{err}"
    );
    assert!(
        d.log_text().contains("percnt"),
        "the refusal is logged:\n{}",
        d.log_text()
    );
    let (_, metrics) = http(&d.addr, "/metrics", None).await;
    assert!(
        metrics.contains("omnistock_config_last_reload_ok 0"),
        "{metrics}"
    );

    // A good edit: applied atomically, desired state recomputed with the new knobs.
    m.write_config(&config_text(&url, &listen, "", "buffer = 2, percent = 50"));
    eventually(
        "the good edit is applied",
        Duration::from_secs(10),
        || async {
            let (_, body) = http(&d.addr, "/api/status", None).await;
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            (v["daemon"]["reloads"]["applied"] == 1
                && v["daemon"]["reloads"]["last_error"].is_null())
            .then_some(())
        },
    )
    .await;
    let out = m.ok(&["explain", "MUG-RED", "--channel", "ebay"]);
    assert!(
        out.contains("× 50% = 4") && out.contains("desired    v2: qty 4"),
        "{out}"
    );

    // SIGHUP reloads too (same file: nothing changes, but it is counted).
    d.signal("HUP");
    eventually("SIGHUP reload", Duration::from_secs(10), || async {
        let (_, body) = http(&d.addr, "/api/status", None).await;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (v["daemon"]["reloads"]["applied"] == 2).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_second_daemon_on_one_sqlite_file_is_refused() {
    let (m, _) = merchant_on_port("").await;
    if m.db.is_postgres() {
        return; // several instances on PostgreSQL are allowed (issue 6); this guard is SQLite's
    }
    let _first = spawn(&m).await;
    let out = m.run(&["run"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already running") && err.contains("PostgreSQL"),
        "{err}"
    );
}

#[tokio::test]
async fn the_admin_token_guards_everything_but_health() {
    let token = "admin-token-0123456789abcdef";
    let (m, _) = merchant_on_port(&format!("admin_token = \"{token}\"")).await;
    let d = spawn(&m).await;
    assert_eq!(http(&d.addr, "/healthz", None).await.0, 200);
    assert_eq!(http(&d.addr, "/api/status", None).await.0, 401);
    assert_eq!(http(&d.addr, "/metrics", Some("wrong")).await.0, 401);
    assert_eq!(http(&d.addr, "/api/status", Some(token)).await.0, 200);
    assert_eq!(http(&d.addr, "/metrics", Some(token)).await.0, 200);
}

/// One request with any method, path and header lines; (status, body).
async fn raw(addr: &str, method: &str, path: &str, headers: &[String]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the admin API");
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    s.write_all(
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Length: 0\r\n\
             Connection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Every admin route (`/metrics`, `/api/status`; `/healthz` is open, `/webhooks/*` answers to
/// signatures) refuses a missing token, a wrong one, one that is only a prefix or an extension
/// of the right one, another scheme, and the right token anywhere but the `Authorization` header
/// (query string, other headers); other methods are no way around it.
#[tokio::test]
async fn every_admin_route_refuses_a_missing_wrong_or_misplaced_token() {
    let token = "admin-token-0123456789abcdef";
    let (m, _) = merchant_on_port(&format!("admin_token = \"{token}\"")).await;
    let d = spawn(&m).await;
    let refused: Vec<(String, Vec<String>)> = vec![
        ("no token".into(), vec![]),
        ("wrong".into(), vec!["Authorization: Bearer wrong".into()]),
        ("empty".into(), vec!["Authorization: Bearer ".into()]),
        (
            "a prefix".into(),
            vec![format!(
                "Authorization: Bearer {}",
                &token[..token.len() - 1]
            )],
        ),
        (
            "longer".into(),
            vec![format!("Authorization: Bearer {token}0")],
        ),
        (
            "other case".into(),
            vec![format!("Authorization: Bearer {}", token.to_uppercase())],
        ),
        ("no scheme".into(), vec![format!("Authorization: {token}")]),
        (
            "Basic".into(),
            vec![format!("Authorization: Basic {token}")],
        ),
        (
            "another header".into(),
            vec![format!("X-Admin-Token: {token}")],
        ),
        ("a cookie".into(), vec![format!("Cookie: token={token}")]),
    ];
    for path in ["/metrics", "/api/status"] {
        for (why, headers) in &refused {
            let (code, body) = raw(&d.addr, "GET", path, headers).await;
            assert_eq!(code, 401, "{path} with {why}: {body}");
            assert!(
                !body.contains(token),
                "{path} {why}: the answer shows the token"
            );
        }
        for query in ["token", "access_token", "admin_token", "bearer"] {
            let (code, _) = raw(&d.addr, "GET", &format!("{path}?{query}={token}"), &[]).await;
            assert_eq!(code, 401, "{path} with the token as ?{query}=");
        }
        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            let (code, _) = raw(&d.addr, method, path, &[]).await;
            assert!(
                code == 401 || code == 405,
                "{method} {path} without a token: {code}"
            );
        }
        let (code, _) = raw(
            &d.addr,
            "GET",
            path,
            &[format!("Authorization: Bearer {token}")],
        )
        .await;
        assert_eq!(code, 200, "{path} with the token");
    }
    assert_eq!(http(&d.addr, "/healthz", None).await.0, 200);
    assert_eq!(raw(&d.addr, "GET", "/api/other", &[]).await.0, 404);
    let log = d.log_text();
    assert!(!log.contains(token), "the token in the log:\n{log}");
}

#[tokio::test]
async fn a_public_listen_address_needs_a_token() {
    let m = Merchant::with(|url| config_text(url, "0.0.0.0:8686", "", "buffer = 2")).await;
    let err = m.fails(&["check", "--skip-healthchecks"]);
    assert!(err.contains("admin_token"), "{err}");
    // Any address other hosts can reach, and the daemon itself, not only `check`.
    for listen in ["[::]:8686", "192.168.1.10:8686"] {
        let m = Merchant::with(|url| config_text(url, listen, "", "buffer = 2")).await;
        let err = m.fails(&["check", "--skip-healthchecks"]);
        assert!(err.contains("admin_token"), "{listen}: {err}");
        let err = m.fails(&["run"]);
        assert!(err.contains("admin_token"), "run on {listen}: {err}");
    }
    // A token too short to resist guessing is refused too.
    let m = Merchant::with(|url| {
        config_text(url, "0.0.0.0:8686", "admin_token = \"short\"", "buffer = 2")
    })
    .await;
    let err = m.fails(&["check", "--skip-healthchecks"]);
    assert!(err.contains("at least"), "{err}");
    assert!(!err.contains("\"short\""), "the token is not echoed: {err}");
}
