//! Readiness: a TCP connect, or an HTTP GET answering below 500. The same
//! probe serves as the health check of a deployment without `health:`.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{InstanceHandle, Platform};
use crate::spec::Readiness;

/// One probe of `host:port`: `Ok(detail)` when it is up.
pub async fn probe(
    host: &str,
    port: u16,
    path: Option<&str>,
    timeout: Duration,
) -> Result<String, String> {
    let attempt = async {
        let mut stream = TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("connect {host}:{port}: {e}"))?;
        let Some(path) = path else {
            return settled(&mut stream, host, port).await;
        };
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let mut head = [0u8; 64];
        let mut read = 0;
        while read < 12 {
            let n = stream
                .read(&mut head[read..])
                .await
                .map_err(|e| format!("GET {path}: {e}"))?;
            if n == 0 {
                break;
            }
            read += n;
        }
        let line = String::from_utf8_lossy(&head[..read]);
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("GET {path}: not an HTTP response"))?;
        if status < 500 {
            Ok(format!("GET {path}: {status}"))
        } else {
            Err(format!("GET {path}: {status}"))
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "no answer from {host}:{port} within {} ms",
            timeout.as_millis()
        )),
    }
}

/// How long a TCP probe watches a fresh connection for being closed.
const SETTLE: Duration = Duration::from_millis(100);

/// A TCP probe's verdict on an open connection: up unless the other side
/// closes it at once. Docker's port forwarder accepts on a published port
/// before the container listens, then closes the connection when it
/// cannot reach the container; a connect alone would call that ready.
async fn settled(stream: &mut TcpStream, host: &str, port: u16) -> Result<String, String> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(SETTLE, stream.read(&mut first)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Err(format!(
            "{host}:{port} accepted the connection and closed it at once"
        )),
        Ok(Ok(_)) | Err(_) => Ok(format!("connected to {host}:{port}")),
    }
}

/// Probes until the instance is up, it died (`platform` says it is no
/// longer alive), or the readiness timeout passed.
pub async fn wait_ready(
    host: &str,
    port: u16,
    readiness: &Readiness,
    platform: &dyn Platform,
    handle: &InstanceHandle,
) -> Result<String, String> {
    let deadline = Instant::now() + readiness.timeout;
    loop {
        let last = match probe(
            host,
            port,
            readiness.path.as_deref(),
            Duration::from_secs(2),
        )
        .await
        {
            Ok(detail) => return Ok(detail),
            Err(e) => e,
        };
        if !platform.alive(handle).await {
            return Err(format!("it exited before it was ready ({last})"));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "not ready after {} s ({last})",
                readiness.timeout.as_secs_f64()
            ));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
