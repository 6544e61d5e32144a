//! Directory artifacts as deterministic tar archives, optionally
//! zstd-compressed, and their confined extraction.
//!
//! [`pack`] turns a tree into the same bytes every time (so the same tree
//! is the same blob, and deduplicates); [`unpack`] extracts into a
//! destination and refuses anything that could land outside it: absolute
//! paths, `..`, hard links, devices and fifos, symlinks whose target could
//! resolve outside, and writes through symlinks; [`unpack_staged`] does the
//! same through a staging directory, so a corrupt blob lands nothing. Caps
//! on entry count and expanded size ([`Limits`]) bound what a hostile
//! archive can cost, and are enforced when packing too, so no archive is
//! stored that could not be extracted.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use kiln_store::{archive, cas::BlobStore};
//! use std::path::Path;
//! let store = BlobStore::open(Path::new(".kiln"))?;
//! let mut blob = store.writer()?;
//! let limits = archive::Limits::default();
//! archive::pack(Path::new("dist"), archive::Compression::Zstd, &limits, &mut blob)?;
//! let stored = blob.commit()?;
//! let reader = store.open_blob(&stored.blob.digest)?;
//! archive::unpack_staged(reader, archive::Compression::Zstd, Path::new("out"), &limits)?;
//! # Ok(()) }
//! ```

mod error;
mod pack;
mod path;
mod stage;
mod unpack;

pub use error::{Error, LinkReason, Result};
pub use pack::{pack, pack_files};
pub use stage::unpack_staged;
pub use unpack::unpack;

/// zstd level for packed archives: level 3 compresses build output well at
/// several hundred MiB/s, so packing is not the slow step of an upload.
pub const ZSTD_LEVEL: i32 = 3;

/// How an archive's tar stream is wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Plain tar.
    None,
    /// tar in a zstd frame (level [`ZSTD_LEVEL`]).
    Zstd,
}

/// Caps on what extraction accepts, and so on what packing produces;
/// exceeding one is an error naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most entries (files, directories, symlinks) extracted.
    pub max_entries: u64,
    /// Most bytes of file content written.
    pub max_bytes: u64,
}

impl Default for Limits {
    /// One million entries and 16 GiB: beyond any build output kiln expects
    /// to move between jobs, well below what fills a CI disk by surprise.
    fn default() -> Self {
        Self {
            max_entries: 1_000_000,
            max_bytes: 16 * 1024 * 1024 * 1024,
        }
    }
}

/// What a pack or unpack handled.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Entries (files, directories, symlinks), excluding the root.
    pub entries: u64,
    /// Bytes of file content.
    pub bytes: u64,
}
