//! Errors of the blob store.

use std::io;
use std::path::PathBuf;

use super::Digest;

/// Something the blob store could not do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store's directories could not be created or opened.
    #[error("cannot open the blob store at `{path}`")]
    Open {
        /// The directory that failed.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file system ran out of space (or quota) while a blob was written.
    /// The partial temp file was removed; nothing was committed.
    #[error(
        "disk full while storing a blob in `{dir}`: free space (`kiln artifacts gc`) and retry"
    )]
    DiskFull {
        /// The store's temp directory.
        dir: PathBuf,
        /// The cause (`ENOSPC` or `EDQUOT`).
        #[source]
        source: io::Error,
    },
    /// Reading the data to store failed; nothing was committed.
    #[error("cannot read the data to store")]
    Source {
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file to store could not be opened.
    #[error("cannot open `{path}` to store it")]
    SourceFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing, syncing or renaming a blob failed; nothing was committed.
    #[error("cannot write blob file `{path}`")]
    Write {
        /// The temp file or object path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// No blob with this digest is stored.
    #[error("blob `{digest}` is not in the store")]
    NotFound {
        /// The digest asked for.
        digest: Digest,
    },
    /// A stored blob's content no longer hashes to its name.
    #[error(
        "blob `{digest}` is corrupt: its content hashes to `{actual}`; \
         it was not served, re-upload it or run `kiln artifacts verify`"
    )]
    Corrupt {
        /// The blob's name.
        digest: Digest,
        /// What its content hashes to now.
        actual: Digest,
    },
    /// Reading a stored blob failed.
    #[error("cannot read blob `{digest}` at `{path}`")]
    Read {
        /// The blob's name.
        digest: Digest,
        /// Its object file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Listing or removing files of the store failed.
    #[error("cannot access `{path}` in the blob store")]
    Access {
        /// The file or directory involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Text given as a digest is not one.
    #[error("invalid digest `{text}`: expected 64 lowercase hex characters")]
    InvalidDigest {
        /// The text as given.
        text: String,
    },
}

impl Error {
    /// The store error carried inside an [`io::Error`], as returned by
    /// [`BlobReader`](super::BlobReader)'s `Read` impl and
    /// [`BlobWriter`](super::BlobWriter)'s `Write` impl, which must speak
    /// `io::Error`.
    pub fn from_io(err: &io::Error) -> Option<&Error> {
        err.get_ref()?.downcast_ref::<Error>()
    }

    /// Converts to an `io::Error` that [`Error::from_io`] can take apart.
    pub(crate) fn into_io(self) -> io::Error {
        let kind = match &self {
            Error::Corrupt { .. } => io::ErrorKind::InvalidData,
            Error::NotFound { .. } => io::ErrorKind::NotFound,
            Error::DiskFull { .. } => io::ErrorKind::StorageFull,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, self)
    }
}

/// Whether an I/O error means the file system is out of space.
pub(crate) fn is_disk_full(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(code) if code == rustix::io::Errno::NOSPC.raw_os_error()
            || code == rustix::io::Errno::DQUOT.raw_os_error()
    ) || err.kind() == io::ErrorKind::StorageFull
        || err.kind() == io::ErrorKind::QuotaExceeded
}

/// Result of the blob store.
pub type Result<T, E = Error> = std::result::Result<T, E>;
