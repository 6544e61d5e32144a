//! `kiln/http-health`: `GET <path>` on the instance; healthy on a 2xx
//! answer, unhealthy on any other answer or a refused connection, unknown
//! on a bad parameter. Reports `latency-ms`. It declares no capability:
//! the host grants every health check the target's address, and only it.

use std::time::{Duration, Instant};

use http1::Url;
use kiln_sdk::{HealthCheck, HealthReport, HealthStatus, InputSpec, Inputs, Metadata, Target};

/// The check.
pub struct HttpHealth;

impl HealthCheck for HttpHealth {
    fn metadata() -> Metadata {
        Metadata::new(
            "http-health",
            env!("CARGO_PKG_VERSION"),
            "GETs a path on the instance; healthy on 2xx",
        )
        .input(InputSpec::with_default("path", "the path to GET", "/"))
        .input(InputSpec::with_default(
            "timeout",
            "connect and read timeout",
            "5s",
        ))
    }

    fn check(target: &Target, params: &Inputs) -> HealthReport {
        let (path, timeout) = match (
            params.get::<String>("path"),
            params.get::<Duration>("timeout"),
        ) {
            (Ok(p), Ok(t)) => (p, t),
            (Err(e), _) | (_, Err(e)) => {
                return HealthReport::new(HealthStatus::Unknown, e.message());
            }
        };
        if !path.starts_with('/') {
            return HealthReport::new(
                HealthStatus::Unknown,
                format!("input `path` is `{path}`: expected a path starting with `/`"),
            );
        }
        let url = Url {
            host: target.host.clone(),
            port: target.port,
            path: path.clone(),
        };
        let start = Instant::now();
        let result = http1::request("GET", &url, None, b"", timeout);
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        let report = match result {
            Ok(r) if (200..300).contains(&r.status) => HealthReport::new(
                HealthStatus::Healthy,
                format!("GET {path}: {} in {ms:.0} ms", r.status),
            ),
            Ok(r) => HealthReport::new(
                HealthStatus::Unhealthy,
                format!("GET {path}: {} in {ms:.0} ms", r.status),
            ),
            Err(e) => HealthReport::new(HealthStatus::Unhealthy, format!("GET {path}: {e}")),
        };
        report.metric("latency-ms", ms)
    }
}

kiln_sdk::health_check!(HttpHealth);

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_sdk::testing::inputs;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn target(port: u16) -> Target {
        Target {
            host: "127.0.0.1".into(),
            port,
            version: "v2".into(),
            instance: "web-v2-1".into(),
        }
    }

    fn answer_once(answer: &'static str) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0; 1024];
            let _ = s.read(&mut buf);
            s.write_all(answer.as_bytes()).unwrap();
        });
        port
    }

    #[test]
    fn two_hundreds_are_healthy_with_latency() {
        let port = answer_once("HTTP/1.1 200 OK\r\n\r\nok");
        let r = HttpHealth::check(
            &target(port),
            &inputs(&HttpHealth::metadata(), &[("path", "/healthz")]),
        );
        assert_eq!(r.status, HealthStatus::Healthy, "{}", r.detail);
        assert!(
            r.detail.starts_with("GET /healthz: 200 in "),
            "{}",
            r.detail
        );
        assert_eq!(r.metrics[0].name, "latency-ms");
    }

    #[test]
    fn other_answers_and_refusals_are_unhealthy() {
        let port = answer_once("HTTP/1.1 503 Busy\r\n\r\n");
        let r = HttpHealth::check(&target(port), &inputs(&HttpHealth::metadata(), &[]));
        assert_eq!(r.status, HealthStatus::Unhealthy);
        assert!(r.detail.starts_with("GET /: 503 in "), "{}", r.detail);
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let r = HttpHealth::check(&target(closed), &inputs(&HttpHealth::metadata(), &[]));
        assert_eq!(r.status, HealthStatus::Unhealthy);
        assert!(
            r.detail
                .starts_with(&format!("GET /: cannot connect to `127.0.0.1:{closed}`")),
            "{}",
            r.detail
        );
    }

    #[test]
    fn bad_parameters_are_unknown() {
        let meta = HttpHealth::metadata();
        let r = HttpHealth::check(&target(1), &inputs(&meta, &[("path", "healthz")]));
        assert_eq!(
            r,
            HealthReport::new(
                HealthStatus::Unknown,
                "input `path` is `healthz`: expected a path starting with `/`"
            )
        );
        let r = HttpHealth::check(&target(1), &inputs(&meta, &[("timeout", "soon")]));
        assert_eq!(
            r.detail,
            "input `timeout` is `soon`: expected a duration like `500ms`, `30s`, `2m` or `1h`"
        );
    }
}
