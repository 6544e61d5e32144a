//! What the index holds about an artifact, and how rows become values.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Row;

use crate::RunId;
use crate::cas::{Digest, VerifyReport};

/// How an artifact's bytes are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// One regular file, stored as is.
    File,
    /// A directory or a selection of files, as a zstd tar.
    Tree,
}

impl Kind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Tree => "tree",
        }
    }

    pub(super) fn parse(text: &str) -> Self {
        if text == "file" {
            Kind::File
        } else {
            Kind::Tree
        }
    }
}

/// One indexed artifact.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Artifact {
    /// The run that uploaded it.
    pub run: RunId,
    /// The uploading job's name (`test (shard=1)`).
    pub job: String,
    /// The artifact's name.
    pub name: String,
    /// File or tree.
    pub kind: Kind,
    /// Where it came from, relative to the workspace (`target/release/app`
    /// for a file, the directory for a tree, `` for a selection of files
    /// rooted at the workspace). A download puts it back there.
    pub path: String,
    /// The blob.
    #[serde(serialize_with = "hex")]
    pub digest: Digest,
    /// Blob size in bytes (for a tree: the compressed archive).
    pub size: u64,
    /// When it was uploaded.
    #[serde(serialize_with = "unix_ms")]
    pub created: SystemTime,
    /// When it was last downloaded (or uploaded).
    #[serde(serialize_with = "unix_ms")]
    pub accessed: SystemTime,
    /// Whether its blob is pinned.
    pub pinned: bool,
}

fn hex<S: serde::Serializer>(digest: &Digest, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&digest.to_hex())
}

fn unix_ms<S: serde::Serializer>(t: &SystemTime, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_i64(crate::to_ms(*t))
}

/// What `verify` found, with the index's view of each blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The blob store's report.
    pub report: VerifyReport,
    /// For each corrupt or missing blob, the entries that use it
    /// (`artifact `app` of run 3 (job `build`)`, `cache `deps-…``).
    pub users: Vec<(Digest, Vec<String>)>,
}

/// What `kiln artifacts get|pin` named.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// A named artifact.
    Artifact(Artifact),
    /// A digest, with the newest artifact that uses it (if any).
    Digest(Digest, Option<Artifact>),
}

pub(super) fn artifact_from_row(row: &Row<'_>) -> rusqlite::Result<Artifact> {
    let digest: String = row.get(5)?;
    Ok(Artifact {
        run: row.get(0)?,
        job: row.get(1)?,
        name: row.get(2)?,
        kind: Kind::parse(&row.get::<_, String>(3)?),
        path: row.get(4)?,
        digest: digest.parse().unwrap_or(Digest::from_bytes([0; 32])),
        size: row.get::<_, i64>(6)? as u64,
        created: from_ms(row.get(7)?),
        accessed: from_ms(row.get(8)?),
        pinned: row.get(9)?,
    })
}

pub(crate) fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
