//! The connection to the Docker engine: made on first use, so a pipeline
//! without containers never needs Docker, and made once per process.

use bollard::Docker;
use tokio::sync::OnceCell;

use crate::error::{DockerError, Result};

/// Where the engine is and, once used, the client talking to it.
#[derive(Debug)]
pub struct Engine {
    address: String,
    client: OnceCell<Docker>,
    /// Images seen present in this process: each is inspected once, not
    /// once per container.
    present: std::sync::Mutex<std::collections::HashSet<String>>,
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
