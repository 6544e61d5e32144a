//! Why a deployment operation failed.

use std::path::PathBuf;

/// A deployment error. Rollout *outcomes* (rolled back, rejected) are not
/// errors: they are [`crate::Outcome`]s.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeployError {
    /// The rollout journal (SQLite) failed.
    #[error("rollout journal `{}` failed", path.display())]
    Journal {
        /// The database.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// A file or socket operation failed.
    #[error("cannot {what} `{}`", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// On what.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An instance could not be started.
    #[error("cannot start instance `{instance}`: {message}")]
    Start {
        /// Instance name.
        instance: String,
        /// Why.
        message: String,
    },
    /// A target could not stop or find instances.
    #[error("the `{target}` target failed: {message}")]
    Target {
        /// `process` or `docker`.
        target: &'static str,
        /// Why.
        message: String,
    },
    /// The service's proxy did not answer or refused a command.
    #[error("the proxy of service `{service}` failed: {message}")]
    Proxy {
        /// Service.
        service: String,
        /// Why.
        message: String,
    },
    /// Another kiln process is rolling this service out.
    #[error("service `{service}` is being deployed by another kiln process (pid {pid})")]
    Busy {
        /// Service.
        service: String,
        /// Its pid, as recorded.
        pid: i64,
    },
    /// Nothing to act on (no such service, run, gate, or version).
    #[error("{0}")]
    NotFound(String),
    /// The request cannot be carried out as given.
    #[error("{0}")]
    Invalid(String),
}

impl DeployError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

/// Results of this crate.
pub type Result<T, E = DeployError> = std::result::Result<T, E>;
