//! The connection to the Docker engine: made on first use, so a pipeline
//! without containers never needs Docker, and made once per process.

use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, ClientVersion, Docker};
use tokio::sync::{OnceCell, oneshot};

use crate::error::{DockerError, Result};

/// Where the engine is and, once used, the client talking to it.
#[derive(Debug)]
pub struct Engine {
    address: String,
    client: OnceCell<Docker>,
    /// Images seen present in this process: each is inspected once, not
    /// once per container.
    present: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The API version, being asked on a thread of its own (see
    /// [`Engine::connect_early`]).
    early: std::sync::Mutex<Option<oneshot::Receiver<std::io::Result<Option<ClientVersion>>>>>,
}

impl Engine {
    /// The engine `DOCKER_HOST` names, else the default socket.
    pub fn from_env() -> Self {
        let address = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned());
        Self {
            address,
            client: OnceCell::new(),
            present: Default::default(),
            early: Default::default(),
        }
    }

    /// Starts asking the engine for its API version now, on a thread of
    /// its own, so the answer is in by the time the first container needs
    /// the client: `kiln run` calls this before it opens the store, whose
    /// writes take longer than the question. Does nothing for an engine
    /// that is not on a Unix socket; errors surface at [`Engine::client`].
    pub fn connect_early(&self) {
        let Some(path) = self.address.strip_prefix("unix://") else {
            return;
        };
        let path = path.to_owned();
        let (answer, early) = oneshot::channel();
        let asked = std::thread::Builder::new()
            .name("kiln-docker-ping".into())
            .spawn(move || {
                kiln_engine::process::leave_signals_to_the_engine_thread();
                let _ = answer.send(ping_version_blocking(&path));
            });
        if asked.is_ok() {
            *self.early.lock().unwrap_or_else(|p| p.into_inner()) = Some(early);
        }
    }

    pub(crate) fn known_present(&self, image: &str) -> bool {
        self.present
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(image)
    }

    pub(crate) fn saw_present(&self, image: &str) {
        self.present
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(image.to_owned());
    }

    /// The address connections go to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The client, connecting (and agreeing on the API version) on first
    /// use. The agreed version matters: this machine's engine speaks API
    /// 1.41, older than bollard's default.
    pub async fn client(&self) -> Result<&Docker> {
        self.client
            .get_or_try_init(|| async {
                let unavailable = |cause: String| DockerError::Unavailable {
                    address: self.address.clone(),
                    cause,
                };
                // On a socket, the version comes from `/_ping`'s header, as
                // the docker CLI gets it: the engine answers `/version` by
                // asking containerd and running `runc` and `docker-init`
                // (~10 ms here, more when busy), ahead of every container.
                let early = self.early.lock().unwrap_or_else(|p| p.into_inner()).take();
                let asked = match early {
                    Some(early) => early.await.ok(),
                    None => None,
                };
                if let Some(path) = self.address.strip_prefix("unix://")
                    && let Some(version) = match asked {
                        Some(answer) => answer,
                        None => ping_version(path).await,
                    }
                    .map_err(|e| unavailable(e.to_string()))?
                {
                    let version = if version < *API_DEFAULT_VERSION {
                        version
                    } else {
                        *API_DEFAULT_VERSION
                    };
                    return Docker::connect_with_unix(&self.address, REQUEST_TIMEOUT, &version)
                        .map_err(|e| unavailable(e.to_string()));
                }
                let docker = Docker::connect_with_host(&self.address)
                    .map_err(|e| unavailable(e.to_string()))?;
                docker
                    .negotiate_version()
                    .await
                    .map_err(|e| unavailable(e.to_string()))
            })
            .await
    }
}

/// HTTP/1.0, so the engine closes the connection after its answer.
const PING: &[u8] = b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";

/// bollard's own request timeout, in seconds.
const REQUEST_TIMEOUT: u64 = 120;

/// The API version the engine on the socket at `path` speaks, from the
/// `Api-Version` header of its `/_ping`; `None` when the answer has none
/// (the caller then asks `/version`).
async fn ping_version(path: &str) -> std::io::Result<Option<ClientVersion>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ask = async {
        let mut socket = tokio::net::UnixStream::connect(path).await?;
        socket.write_all(PING).await?;
        let mut answer = Vec::new();
        socket.take(64 * 1024).read_to_end(&mut answer).await?;
        Ok(api_version(&String::from_utf8_lossy(&answer)))
    };
    tokio::time::timeout(Duration::from_secs(REQUEST_TIMEOUT), ask)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// [`ping_version`] without a runtime, for [`Engine::connect_early`].
fn ping_version_blocking(path: &str) -> std::io::Result<Option<ClientVersion>> {
    use std::io::{Read, Write};
    let mut socket = std::os::unix::net::UnixStream::connect(path)?;
    socket.set_read_timeout(Some(Duration::from_secs(REQUEST_TIMEOUT)))?;
    socket.set_write_timeout(Some(Duration::from_secs(REQUEST_TIMEOUT)))?;
    socket.write_all(PING)?;
    let mut answer = Vec::new();
    socket.take(64 * 1024).read_to_end(&mut answer)?;
    Ok(api_version(&String::from_utf8_lossy(&answer)))
}

/// `1.41` from an HTTP answer's `Api-Version: 1.41`, if it is a 200.
fn api_version(answer: &str) -> Option<ClientVersion> {
    let mut lines = answer.lines();
    let status = lines.next()?;
    if status.split_whitespace().nth(1) != Some("200") {
        return None;
    }
    let value = lines.take_while(|l| !l.is_empty()).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("api-version")
            .then_some(value.trim())
    })?;
    let (major, minor) = value.split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

/// Wraps a bollard error with what kiln was doing.
pub(crate) fn api(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> DockerError {
    let action = action.into();
    move |source| DockerError::Api { action, source }
}

/// Whether a bollard error is Docker's 404.
pub(crate) fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::api_version;

    #[test]
    fn the_api_version_comes_from_the_ping_header() {
        let answer = "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK";
        let version = api_version(answer).expect("a version");
        assert_eq!((version.major_version, version.minor_version), (1, 41));
        let lower = "HTTP/1.0 200 OK\r\napi-version:1.53\r\n\r\n";
        assert_eq!(api_version(lower).map(|v| v.minor_version), Some(53));
        assert!(
            api_version("HTTP/1.1 500 Internal Server Error\r\nApi-Version: 1.41\r\n\r\n")
                .is_none()
        );
        assert!(api_version("HTTP/1.1 200 OK\r\n\r\nApi-Version: 1.41").is_none());
        assert!(api_version("").is_none());
    }
}
