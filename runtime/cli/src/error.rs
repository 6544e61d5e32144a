//! Why a kiln command stopped, and the exit code that goes with it.

use std::path::PathBuf;

use kiln_pipeline::LoadError;

use crate::locate::DEFAULT_FILES;

/// Exit code: the pipeline failed or was cancelled.
pub(crate) const EXIT_FAILED: u8 = 1;
/// Exit code: invalid input or usage.
pub(crate) const EXIT_INVALID: u8 = 2;

/// A command that could not do its job.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// No pipeline file given and none of the defaults exist.
    #[error(
        "no pipeline file found: tried `{}` in the current directory",
        DEFAULT_FILES.join("`, `")
    )]
    NoPipeline,
    /// A file could not be read or written.
    #[error("cannot read `{}`", path.display())]
    Io {
        /// Which file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The pipeline file is larger than a pipeline may be (or endless).
    #[error(
        "`{}` is {} bytes; pipeline files are limited to {} bytes (10 MiB)",
        path.display(),
        size.map_or_else(|| format!("more than {}", kiln_pipeline::MAX_FILE_BYTES), |s| s.to_string()),
        kiln_pipeline::MAX_FILE_BYTES
    )]
    TooLarge {
        /// Which file.
        path: PathBuf,
        /// Its size, when the file system knows it.
        size: Option<u64>,
    },
    /// The pipeline has errors; they are rendered as diagnostics.
    #[error("{0}")]
    Load(LoadError),
    /// The run record store failed.
    #[error(transparent)]
    Store(#[from] kiln_store::StoreError),
    /// The artifact store failed or refused.
    #[error("{}", crate::store_adapter::describe(.0))]
    Artifacts(kiln_store::artifacts::Error),
    /// A deployment operation failed.
    #[error(transparent)]
    Deploy(#[from] kiln_deploy::DeployError),
    /// Bad input that clap could not check (secret files, `--job` names, …).
    #[error("{0}")]
    Usage(String),
    /// Plugin resolution, the plugin store or kiln.lock failed.
    #[error(transparent)]
    Plugin(#[from] kiln_fetch::Error),
    /// The engine could not start the run.
    #[error("{0}")]
    Engine(String),
}

impl From<kiln_fetch::ReferenceError> for CliError {
    fn from(err: kiln_fetch::ReferenceError) -> Self {
        CliError::Plugin(err.into())
    }
}

impl CliError {
    /// Every error is an input or environment problem: exit 2. A pipeline
    /// that ran and failed is not an error; it returns exit 1 directly.
    pub(crate) fn exit_code(&self) -> u8 {
        EXIT_INVALID
    }
}

/// An error and its causes on one line: `what: why: deeper why`.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
