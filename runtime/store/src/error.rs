//! Everything that can go wrong reading or writing `.kiln/`.

use std::path::PathBuf;

/// An error from the run-record store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The state directory or a file in it could not be created or read.
    #[error("cannot access `{}`", path.display())]
    Io {
        /// The file or directory kiln was working on.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// SQLite refused an operation (locked for too long, corrupt file, …).
    #[error("run database `{}` failed", path.display())]
    Database {
        /// The `kiln.db` file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer kiln; this one will not touch it.
    #[error(
        "run database `{}` has schema version {found}, this kiln understands up to {supported}; upgrade kiln",
        path.display()
    )]
    NewerSchema {
        /// The `kiln.db` file.
        path: PathBuf,
        /// `PRAGMA user_version` found in the file.
        found: i64,
        /// The newest version this build can migrate to.
        supported: i64,
    },
    /// No run with this id exists.
    #[error("there is no run `{id}`")]
    UnknownRun {
        /// The id the user asked for.
        id: i64,
    },
    /// A stored value is not one this kiln writes (hand-edited database?).
    #[error("run database holds an unknown run status `{value}`")]
    BadStatus {
        /// The stored text.
        value: String,
    },
}

/// Shorthand used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
