//! Why a benchmark could not produce figures.

use std::path::PathBuf;

/// A benchmark that failed to run; the binary prints it and exits 1.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing (`writing `/tmp/x/Makefile``).
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The generated pipeline did not load: a kiln bug or a generator bug,
    /// either way the timing would be meaningless.
    #[error("the generated pipeline does not load: {0}")]
    Load(String),
    /// A measured command exited unsuccessfully.
    #[error("`{command}` failed ({status}); the end of its stderr:\n{stderr_tail}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The last lines it wrote to stderr (the file itself is removed
        /// with the work directory unless `--keep`).
        stderr_tail: String,
    },
    /// The proxy benchmark's setup or a request failed.
    #[error("proxy benchmark: {0}")]
    Proxy(String),
    /// The `kiln` binary is missing and could not be built.
    #[error("no `kiln` binary at `{}`; run `cargo build --release -p kiln` first", path.display())]
    KilnMissing {
        /// Where we looked.
        path: PathBuf,
    },
}

impl Error {
    /// Wraps an I/O error with what we were doing.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}
