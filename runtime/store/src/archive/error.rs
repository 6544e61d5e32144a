//! Errors of packing and extracting archives.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Something packing or extracting an archive refused or could not do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory to pack could not be read.
    #[error("cannot read `{path}` to pack it")]
    Walk {
        /// The path that failed.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The directory to pack holds a file kind archives do not carry.
    #[error(
        "cannot pack `{path}`: it is a {kind}; only regular files, directories and symlinks are archived"
    )]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What it is (socket, fifo, device).
        kind: &'static str,
    },
    /// A file changed size while it was being packed.
    #[error("`{path}` changed while it was being packed; pack again once it is no longer written")]
    Changed {
        /// The file.
        path: PathBuf,
    },
    /// Writing the archive failed (for a blob, see
    /// [`BlobWriter::failure`](crate::cas::BlobWriter::failure) for the typed cause).
    #[error("cannot write the archive")]
    Write {
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading the archive failed: truncated, not a tar/zstd stream, or the
    /// blob under it is corrupt.
    #[error("cannot read the archive")]
    Read {
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An entry path is absolute.
    #[error("archive entry `{path}` has an absolute path; entries must be relative")]
    AbsolutePath {
        /// The entry as written in the archive.
        path: PathBuf,
    },
    /// An entry path contains `..`.
    #[error("archive entry `{path}` contains `..`; entries must stay inside the destination")]
    ParentDir {
        /// The entry as written in the archive.
        path: PathBuf,
    },
    /// An entry is a device, fifo or other special file.
    #[error(
        "archive entry `{path}` is a {kind}; only files, directories and symlinks are extracted"
    )]
    Special {
        /// The entry.
        path: PathBuf,
        /// What it is.
        kind: String,
    },
    /// An entry is a hard link, which could alias a file outside the
    /// destination.
    #[error("archive entry `{path}` is a hard link to `{target}`; hard links are not extracted")]
    HardLink {
        /// The entry.
        path: PathBuf,
        /// Its target.
        target: PathBuf,
    },
    /// A symlink (to pack or to extract) could resolve outside the tree.
    #[error("symlink `{path}` -> `{target}` is refused: {reason}")]
    Link {
        /// The symlink, relative to the tree.
        path: PathBuf,
        /// Its target.
        target: PathBuf,
        /// Why.
        reason: LinkReason,
    },
    /// An entry would be written through a symlink in the destination.
    #[error("archive entry `{path}` would be written through the symlink `{link}`")]
    ThroughSymlink {
        /// The entry.
        path: PathBuf,
        /// The symlink on its way.
        link: PathBuf,
    },
    /// An entry clashes with what the destination already holds.
    #[error("archive entry `{path}` conflicts with an existing {existing} in the destination")]
    Conflict {
        /// The entry.
        path: PathBuf,
        /// What is there (`directory`, `file`).
        existing: &'static str,
    },
    /// The archive has more entries than allowed.
    #[error("archive has more than {limit} entries (the `max_entries` cap)")]
    TooManyEntries {
        /// The cap.
        limit: u64,
    },
    /// The archive expands to more bytes than allowed.
    #[error("archive expands to more than {limit} bytes (the `max_bytes` cap)")]
    TooLarge {
        /// The cap.
        limit: u64,
    },
    /// The tree to pack has more entries than an archive may hold: its
    /// extraction would be refused, so it is not stored.
    #[error(
        "cannot pack `{path}`: it holds more than {limit} entries (the `max_entries` cap), \
         so it could never be extracted; store fewer files"
    )]
    PackTooManyEntries {
        /// The tree's root.
        path: PathBuf,
        /// The cap.
        limit: u64,
    },
    /// The tree to pack holds more bytes than an archive may expand to.
    #[error(
        "cannot pack `{path}`: it holds more than {limit} bytes of files (the `max_bytes` cap), \
         so it could never be extracted; store less"
    )]
    PackTooLarge {
        /// The tree's root.
        path: PathBuf,
        /// The cap.
        limit: u64,
    },
    /// Metadata between two entries (long names, pax records) exceeds the cap.
    #[error("archive entry metadata exceeds {limit} bytes; the archive is malformed or hostile")]
    MetadataTooLarge {
        /// The cap.
        limit: u64,
    },
    /// Writing into the destination failed.
    #[error("cannot write `{path}` in `{dest}`")]
    Destination {
        /// The destination directory.
        dest: PathBuf,
        /// The path inside it.
        path: PathBuf,
        /// The cause (an attempt to leave the destination shows up here too,
        /// as cap-std's refusal).
        #[source]
        source: io::Error,
    },
}

/// Why a symlink target is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkReason {
    /// The target is an absolute path.
    Absolute,
    /// The target has more leading `..` than the link is deep.
    Climbs,
    /// `..` follows a name: through another link it could go anywhere.
    ParentAfterName,
    /// The target is empty.
    Empty,
}

impl fmt::Display for LinkReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkReason::Absolute => "its target is absolute; use a relative target",
            LinkReason::Climbs => "its target climbs above the top of the tree",
            LinkReason::ParentAfterName => {
                "its target has `..` after a name, which may leave the tree through another link"
            }
            LinkReason::Empty => "its target is empty",
        })
    }
}

/// Result of archive operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
