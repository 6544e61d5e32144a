//! The bundled health checks (`plugins/health`), called through the host
//! exactly as the deploy controller calls them, against real loopback
//! servers: the verdict follows the server, and the host's deadline bounds
//! a check that hangs.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use kiln_wasm::health::{HealthStatus, KeyValue, Target};
use kiln_wasm::{Limits, Plugin, Runtime, World};

async fn load(runtime: &Runtime, name: &str) -> std::sync::Arc<Plugin> {
    let bytes = kiln_bundled::find(name, 1).expect("bundled").bytes;
    let plugin = runtime
        .load(&format!("kiln/{name}@1"), bytes, &kiln_wasm::sha256(bytes))
        .await
        .expect("loads");
    assert_eq!(plugin.world, World::HealthCheck);
    plugin
}

fn runtime() -> Runtime {
    Runtime::new(None, Limits::default()).expect("engine")
}

fn target(port: u16) -> Target {
    Target {
        host: "127.0.0.1".into(),
        port,
        version: "v1".into(),
        instance: "web-v1-1".into(),
    }
}

fn params(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
    pairs
        .iter()
        .map(|(k, v)| KeyValue {
            key: (*k).into(),
            value: (*v).into(),
        })
        .collect()
}

/// A server answering every connection with `status`; returns its port.
fn http_server(status: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    port
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

#[tokio::test]
async fn http_health_follows_the_status_the_instance_answers() {
    let rt = runtime();
    let check = load(&rt, "http-health").await;
    let path = params(&[("path", "/healthz")]);
    let ok = check
        .check(&rt, &target(http_server(200)), &path, soon())
        .await
        .unwrap()
        .report;
    assert_eq!(ok.status, HealthStatus::Healthy, "{}", ok.detail);
    assert!(ok.detail.starts_with("GET /healthz: 200"), "{}", ok.detail);
    assert!(ok.metrics.iter().any(|m| m.name == "latency-ms"));
    let failing = check
        .check(&rt, &target(http_server(503)), &path, soon())
        .await
        .unwrap()
        .report;
    assert_eq!(
        failing.status,
        HealthStatus::Unhealthy,
        "{}",
        failing.detail
    );
    let refused = check
        .check(&rt, &target(closed_port()), &path, soon())
        .await
        .unwrap()
        .report;
    assert_eq!(
        refused.status,
        HealthStatus::Unhealthy,
        "{}",
        refused.detail
    );
}

#[tokio::test]
async fn tcp_health_is_healthy_when_the_port_accepts() {
    let rt = runtime();
    let check = load(&rt, "tcp-health").await;
    let up = check
        .check(&rt, &target(http_server(200)), &[], soon())
        .await
        .unwrap()
        .report;
    assert_eq!(up.status, HealthStatus::Healthy, "{}", up.detail);
    let down = check
        .check(&rt, &target(closed_port()), &[], soon())
        .await
        .unwrap()
        .report;
    assert_eq!(down.status, HealthStatus::Unhealthy, "{}", down.detail);
}

#[tokio::test]
async fn a_check_still_running_at_the_deadline_is_unknown() {
    // Accepts and never answers: http-health would wait its own 30 s.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _held = std::thread::spawn(move || {
        let conns: Vec<_> = listener.incoming().take(1).collect();
        std::thread::sleep(Duration::from_secs(60));
        drop(conns);
    });
    let rt = runtime();
    let check = load(&rt, "http-health").await;
    let deadline = Instant::now() + Duration::from_millis(300);
    let report = check
        .check(&rt, &target(port), &params(&[("timeout", "30s")]), deadline)
        .await
        .unwrap()
        .report;
    assert_eq!(report.status, HealthStatus::Unknown, "{}", report.detail);
    assert_eq!(report.detail, "the check did not finish in time");
}

#[tokio::test]
async fn a_bad_parameter_is_unknown_with_the_checks_reason() {
    let rt = runtime();
    let check = load(&rt, "http-health").await;
    let report = check
        .check(
            &rt,
            &target(http_server(200)),
            &params(&[("path", "healthz")]),
            soon(),
        )
        .await
        .unwrap()
        .report;
    assert_eq!(report.status, HealthStatus::Unknown);
    assert!(
        report.detail.contains("starting with `/`"),
        "{}",
        report.detail
    );
}

#[tokio::test]
async fn a_strategy_is_not_a_health_check() {
    let rt = runtime();
    let bytes = kiln_bundled::find("rolling", 1).unwrap().bytes;
    let rolling = rt
        .load("kiln/rolling@1", bytes, &kiln_wasm::sha256(bytes))
        .await
        .unwrap();
    let err = rolling
        .check(&rt, &target(1), &[], soon())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("a `health-check` is needed here"),
        "{err}"
    );
}

#[tokio::test]
async fn a_target_whose_name_does_not_resolve_is_an_error_naming_it() {
    // `.invalid` never resolves (RFC 6761), so no grant can be made and the
    // guest is not started at all.
    let rt = runtime();
    let check = load(&rt, "tcp-health").await;
    let target = Target {
        host: "web-v1-1.invalid".into(),
        ..target(8080)
    };
    let err = check.check(&rt, &target, &[], soon()).await.unwrap_err();
    assert!(
        matches!(err, kiln_wasm::WasmError::Target { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("health check `kiln/tcp-health@1` cannot reach its target:")
            && text.contains("web-v1-1.invalid:8080"),
        "{text}"
    );
}

#[tokio::test]
async fn what_a_check_writes_comes_back_with_its_verdict() {
    let rt = runtime();
    let bytes = std::fs::read(kiln_test_plugins::HEALTH).expect("built");
    let check = rt
        .load("./always-healthy.wasm", &bytes, &kiln_wasm::sha256(&bytes))
        .await
        .expect("loads");
    let checked = check.check(&rt, &target(8080), &[], soon()).await.unwrap();
    assert_eq!(checked.report.status, HealthStatus::Healthy);
    assert_eq!(checked.output, "looked at web-v1-1\nport 8080\n");
}
