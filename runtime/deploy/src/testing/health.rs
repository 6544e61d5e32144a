//! Stand-in for `kiln/http-health`: `GET path` must answer 2xx or 3xx.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::contract::{HealthReport, HealthStatus, KeyValue, Metadata, Metric, Target};
use crate::plugin::{BoxFuture, HealthCheck};

/// `GET {path}` (default `/healthz`) within `timeout-ms` (default 2000).
#[derive(Debug, Clone, Copy)]
pub struct HttpHealth;

fn param<'p>(params: &'p [KeyValue], key: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.value.as_str())
}

impl HealthCheck for HttpHealth {
    fn metadata(&self) -> Metadata {
        Metadata {
            name: "http-health".into(),
            version: "1.0.0".into(),
            description: "native test stand-in for kiln/http-health".into(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            capabilities: Vec::new(),
        }
    }

    fn check<'a>(
        &'a self,
        target: &'a Target,
        params: &'a [KeyValue],
    ) -> BoxFuture<'a, HealthReport> {
        Box::pin(async move {
            let path = param(params, "path").unwrap_or("/healthz");
            let timeout = param(params, "timeout-ms")
                .and_then(|t| t.parse().ok())
                .map_or(Duration::from_secs(2), Duration::from_millis);
            let started = Instant::now();
            let attempt = async {
                let mut s = TcpStream::connect((target.host.as_str(), target.port)).await?;
                let req = format!(
                    "GET {path} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n\r\n",
                    target.host, target.port
                );
                s.write_all(req.as_bytes()).await?;
                let mut buf = Vec::new();
                s.read_to_end(&mut buf).await?;
                Ok::<_, std::io::Error>(buf)
            };
            let report = |status, detail: String| HealthReport {
                status,
                detail,
                metrics: vec![Metric {
                    name: "latency-ms".into(),
                    value: started.elapsed().as_secs_f64() * 1000.0,
                }],
            };
            match tokio::time::timeout(timeout, attempt).await {
                Err(_) => report(
                    HealthStatus::Unknown,
                    format!("GET {path}: no answer within {} ms", timeout.as_millis()),
                ),
                Ok(Err(e)) => report(HealthStatus::Unhealthy, format!("GET {path}: {e}")),
                Ok(Ok(buf)) => {
                    let head = String::from_utf8_lossy(&buf[..buf.len().min(64)]).into_owned();
                    match head.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()) {
                        Some(code) if (200..400).contains(&code) => {
                            report(HealthStatus::Healthy, format!("GET {path}: {code}"))
                        }
                        Some(code) => {
                            report(HealthStatus::Unhealthy, format!("GET {path}: {code}"))
                        }
                        None => report(
                            HealthStatus::Unhealthy,
                            format!("GET {path}: not an HTTP response"),
                        ),
                    }
                }
            }
        })
    }
}
