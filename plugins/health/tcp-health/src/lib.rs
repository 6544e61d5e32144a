//! `kiln/tcp-health`: healthy when the instance accepts a TCP connection
//! within `timeout`. Reports `connect-ms`. It declares no capability: the
//! host grants every health check the target's address, and only it.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use kiln_sdk::{HealthCheck, HealthReport, HealthStatus, InputSpec, Inputs, Metadata, Target};

/// The check.
pub struct TcpHealth;

impl HealthCheck for TcpHealth {
    fn metadata() -> Metadata {
        Metadata::new(
            "tcp-health",
            env!("CARGO_PKG_VERSION"),
            "Healthy when the instance accepts a TCP connection",
        )
        .input(InputSpec::with_default("timeout", "connect timeout", "2s"))
    }

    fn check(target: &Target, params: &Inputs) -> HealthReport {
        let timeout: Duration = match params.get("timeout") {
            Ok(t) => t,
            Err(e) => return HealthReport::new(HealthStatus::Unknown, e.message()),
        };
        let addr = format!("{}:{}", target.host, target.port);
        let start = Instant::now();
        let result = (target.host.as_str(), target.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve `{}`: {e}", target.host))
            .and_then(|mut addrs| {
                addrs
                    .next()
                    .ok_or_else(|| format!("`{}` has no address", target.host))
            })
            .and_then(|a| {
                let stream = TcpStream::connect_timeout(&a, timeout)
                    .map_err(|e| format!("connect {addr}: {e}"))?;
                // On wasm32-wasip2 a refused non-blocking connect can come
                // back as success; only a connected socket has a peer.
                stream
                    .peer_addr()
                    .map_err(|e| format!("connect {addr}: {e}"))
            });
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(_) => HealthReport::new(
                HealthStatus::Healthy,
                format!("connect {addr}: ok in {ms:.0} ms"),
            ),
            Err(e) => HealthReport::new(HealthStatus::Unhealthy, e),
        }
        .metric("connect-ms", ms)
    }
}

kiln_sdk::health_check!(TcpHealth);

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_sdk::testing::inputs;
    use std::net::TcpListener;

    fn target(port: u16) -> Target {
        Target {
            host: "127.0.0.1".into(),
            port,
            version: "v1".into(),
            instance: "db-1".into(),
        }
    }

    #[test]
    fn a_listening_port_is_healthy_and_a_closed_one_is_not() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let r = TcpHealth::check(&target(port), &inputs(&TcpHealth::metadata(), &[]));
        assert_eq!(r.status, HealthStatus::Healthy, "{}", r.detail);
        assert_eq!(r.metrics[0].name, "connect-ms");
        drop(l);
        let r = TcpHealth::check(&target(port), &inputs(&TcpHealth::metadata(), &[]));
        assert_eq!(r.status, HealthStatus::Unhealthy);
        assert!(
            r.detail.starts_with(&format!("connect 127.0.0.1:{port}: ")),
            "{}",
            r.detail
        );
    }

    #[test]
    fn a_bad_timeout_is_unknown() {
        let r = TcpHealth::check(
            &target(1),
            &inputs(&TcpHealth::metadata(), &[("timeout", "-1")]),
        );
        assert_eq!(r.status, HealthStatus::Unknown);
        assert_eq!(
            r.detail,
            "input `timeout` is `-1`: expected a duration like `500ms`, `30s`, `2m` or `1h`"
        );
    }
}
