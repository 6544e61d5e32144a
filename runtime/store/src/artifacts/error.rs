//! Errors of the artifact and cache index.

use std::io;
use std::path::PathBuf;

use crate::RunId;
use crate::cas::Digest;

/// Something the artifact store could not do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The name breaks the naming rule (`/`, NUL, `..`, …).
    #[error("{message}")]
    InvalidName {
        /// What is wrong, naming the name.
        message: String,
    },
    /// The file or directory to upload could not be read.
    #[error("cannot read `{}` to upload it", path.display())]
    Source {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The path to upload is neither a file nor a directory.
    #[error("cannot upload `{}`: it is not a regular file or a directory", path.display())]
    NotUploadable {
        /// The path.
        path: PathBuf,
    },
    /// Storing or reading a blob failed (disk full, corrupt blob, …).
    #[error(transparent)]
    Blob(#[from] crate::cas::Error),
    /// Packing or extracting a directory failed.
    #[error(transparent)]
    Archive(#[from] crate::archive::Error),
    /// The index database failed.
    #[error(transparent)]
    Database(#[from] crate::StoreError),
    /// A query or update of the artifact tables failed.
    #[error("the artifact index in `kiln.db` failed")]
    Index {
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// No artifact of that name (in that run).
    #[error("{}", not_found(*run, name))]
    NotFound {
        /// The run searched, if one was given.
        run: Option<RunId>,
        /// The name asked for.
        name: String,
    },
    /// A name matches several artifacts; the user must say which.
    #[error("artifact `{name}` is ambiguous: {candidates}; {hint}")]
    Ambiguous {
        /// The name asked for.
        name: String,
        /// Where it exists (`run 3 job build, run 4 job build`).
        candidates: String,
        /// How to choose (`pass --run`).
        hint: &'static str,
    },
    /// A blob kept disappearing between upload and indexing (a `gc` racing
    /// with uploads of content it had just found unreferenced).
    #[error("blob `{digest}` was removed while it was being indexed; retry the upload")]
    Vanished {
        /// The blob.
        digest: Digest,
    },
    /// Writing a downloaded artifact failed.
    #[error("cannot write `{}`", path.display())]
    Destination {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The retention configuration file is invalid.
    #[error("{}:{line}: {message}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

fn not_found(run: Option<RunId>, name: &str) -> String {
    match run {
        Some(run) => format!("run {run} has no artifact `{name}`"),
        None => format!("no artifact is named `{name}`"),
    }
}

/// Result of the artifact store.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<rusqlite::Error> for Error {
    fn from(source: rusqlite::Error) -> Self {
        Error::Index { source }
    }
}
