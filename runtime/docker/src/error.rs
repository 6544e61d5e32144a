//! What can go wrong talking to Docker.

/// An error from the container executor, image checks or clean-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DockerError {
    /// The engine did not answer at all.
    #[error(
        "cannot reach the Docker engine at `{address}`: {cause}; start it (`sudo systemctl start docker`) or point `DOCKER_HOST` at a running engine"
    )]
    Unavailable {
        /// The address tried (`DOCKER_HOST` or the default socket).
        address: String,
        /// Why, in one line.
        cause: String,
    },
    /// An image is not present and may not or cannot be pulled.
    #[error(
        "image `{image}` is not present locally and {why}; build it (`docker build -t {image} .`) or load it (`docker load -i FILE.tar`) first"
    )]
    ImageMissing {
        /// The reference as written.
        image: String,
        /// `pull: never` forbids pulling, or the pull's error.
        why: String,
    },
    /// A request the engine refused or failed.
    #[error("docker: cannot {action}: {source}")]
    Api {
        /// What kiln tried (`create the container for job `build``).
        action: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// A local file operation around a container failed.
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        /// What kiln tried.
        action: &'static str,
        /// The path.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A setting that cannot be honoured.
    #[error("{0}")]
    Refused(String),
    /// The job or step was stopped (deadline, Ctrl-C) while kiln waited
    /// for an image or a service.
    #[error("stopped while waiting for an image or a service")]
    Stopped,
    /// A service did not become healthy.
    #[error("{0}")]
    Service(String),
}

/// Result alias.
pub type Result<T, E = DockerError> = std::result::Result<T, E>;

/// The message of an error, causes included, on one line: what the engine
/// shows as a step note or a job's reason.
pub(crate) fn one_line(error: &DockerError) -> String {
    use std::error::Error as _;
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let more = inner.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = inner.source();
    }
    text
}
