//! The content-addressed blob store: `objects/ab/cdef…` under the state
//! directory, each blob named by the SHA-256 of its bytes.
//!
//! Guarantees:
//! - **One pass, bounded memory.** [`BlobStore::put_reader`] hashes while it
//!   copies, through a few 256 KiB buffers, whatever the blob's size; the
//!   hashing and the writing run on two threads, and a third syncs the temp
//!   file every 32 MiB, so a large ingest costs about max(hash, disk write)
//!   instead of hash + a final flush of the whole blob.
//! - **Atomic, durable commits.** Bytes go to a temp file in `tmp/`, which is
//!   fsynced, made read-only (0444) and renamed into `objects/`, then the
//!   directory is fsynced. A blob under `objects/` is therefore always
//!   complete; a killed upload leaves only a temp file, which the next
//!   [`BlobStore::open`] removes.
//! - **Deduplicated, and repaired by a re-upload.** When a blob with the same
//!   digest is already stored and holds the same bytes as the new copy, the
//!   temp file is dropped unsynced and `objects/` is not touched; a stored
//!   file that differs (damage) is replaced by the new copy.
//! - **Verified on every read.** [`BlobReader`] re-hashes while it reads and
//!   fails before handing out the last byte if the content does not match its
//!   name; [`BlobStore::verify_all`] checks the whole store.
//!
//! This module knows nothing about names, runs or retention: the run
//! database maps artifact names to digests, and passes the digests it
//! references to [`BlobStore::verify_all`].
//!
//! ```no_run
//! # fn main() -> Result<(), kiln_store::cas::Error> {
//! use kiln_store::cas::BlobStore;
//! let store = BlobStore::open(std::path::Path::new(".kiln"))?;
//! let stored = store.put_file(std::path::Path::new("app.tar"))?;
//! let mut blob = store.open_blob(&stored.blob.digest)?;
//! std::io::copy(&mut blob, &mut std::io::sink()).expect("blob is intact");
//! # Ok(()) }
//! ```

mod digest;
mod error;
mod ingest;
mod reader;
mod temp;
mod verify;

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use digest::Digest;
pub use error::{Error, Result};
pub use ingest::BlobWriter;
pub use reader::{BlobReader, export_reader};
pub use verify::{Unreadable, VerifyReport};

use error::Result as R;

/// Directory of committed blobs, relative to the store root.
pub const OBJECTS_DIR: &str = "objects";
/// Directory of in-flight uploads, relative to the store root.
pub const TMP_DIR: &str = "tmp";

/// A stored blob: its name and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Blob {
    /// SHA-256 of the content.
    pub digest: Digest,
    /// Length in bytes.
    pub size: u64,
}

/// What a put did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The blob now in the store.
    pub blob: Blob,
    /// `false` when the blob was already stored and nothing was written to
    /// `objects/` (deduplicated).
    pub new: bool,
}

/// An open blob store rooted at a state directory (usually `.kiln/`).
///
/// Cheap to clone paths out of; safe to use from several threads and several
/// processes at once: commits are renames, and temp files of live uploads
/// are locked so that another process's [`BlobStore::open`] leaves them be.
#[derive(Debug, Clone)]
pub struct BlobStore {
    objects: PathBuf,
    tmp: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) the store under `root`, and removes temp
    /// files left by uploads whose process died.
    pub fn open(root: &Path) -> R<Self> {
        let store = Self {
            objects: root.join(OBJECTS_DIR),
            tmp: root.join(TMP_DIR),
        };
        for dir in [&store.objects, &store.tmp] {
            fs::create_dir_all(dir).map_err(|source| Error::Open {
                path: dir.clone(),
                source,
            })?;
        }
        let removed = store.remove_stale_temp()?;
        if removed > 0 {
            tracing::info!(removed, dir = %store.tmp.display(), "removed temp files of interrupted uploads");
        }
        Ok(store)
    }

    /// Removes temp files of uploads that are no longer running (their
    /// process died before commit). Returns how many were removed. Live
    /// uploads hold a lock on their temp file and are left alone.
    pub fn remove_stale_temp(&self) -> R<usize> {
        temp::remove_stale(&self.tmp)
    }

    /// The directory holding committed blobs.
    pub fn objects_dir(&self) -> &Path {
        &self.objects
    }

    /// Where the blob named `digest` lives (whether or not it is stored).
    pub fn object_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.to_hex();
        self.objects.join(&hex[..2]).join(&hex[2..])
    }

    /// Whether a blob named `digest` is stored (without checking its content).
    pub fn contains(&self, digest: &Digest) -> bool {
        fs::symlink_metadata(self.object_path(digest)).is_ok_and(|m| m.is_file())
    }

    /// Stores everything `source` yields, in one streaming pass with bounded
    /// memory. Returns the blob and whether it was new.
    ///
    /// On any error (source failure, disk full, I/O) the temp file is removed
    /// and `objects/` is unchanged.
    pub fn put_reader(&self, source: impl io::Read) -> R<Stored> {
        ingest::put_reader(self, source)
    }

    /// Stores the file at `path`, like [`BlobStore::put_reader`].
    pub fn put_file(&self, path: &Path) -> R<Stored> {
        let file = fs::File::open(path).map_err(|source| Error::SourceFile {
            path: path.to_owned(),
            source,
        })?;
        self.put_reader(file)
    }

    /// Stores the file at `path` like [`BlobStore::put_file`], unless its
    /// content is already stored. `maybe_stored(size)` says whether a blob
    /// of that size might be (the run database knows the sizes of what it
    /// indexed): only then is the file hashed first, read-only, and a hit
    /// writes nothing at all — not even a temp file. A hit also compares the
    /// file with the stored blob byte for byte (a read of each, no second
    /// hash), so a damaged blob is never taken for the content: it is
    /// replaced. A miss costs that one extra read; files of a size nothing
    /// has are copied in one pass.
    pub fn put_file_dedup(&self, path: &Path, maybe_stored: impl FnOnce(u64) -> bool) -> R<Stored> {
        let size = fs::metadata(path)
            .map_err(|source| Error::SourceFile {
                path: path.to_owned(),
                source,
            })?
            .len();
        if maybe_stored(size) {
            let mut buf = vec![0u8; ingest::CHUNK];
            let (digest, hashed) =
                verify::hash_file(path, &mut buf).map_err(|source| Error::SourceFile {
                    path: path.to_owned(),
                    source,
                })?;
            // As in a commit, the stored blob counts only if it holds the
            // same bytes as the file just hashed to its name; a damaged one
            // is replaced by the full put below.
            let object = self.object_path(&digest);
            let stored = fs::symlink_metadata(&object)
                .is_ok_and(|m| m.is_file() && m.len() == hashed)
                && ingest::same_bytes(path, &object).unwrap_or(false);
            if stored {
                return Ok(Stored {
                    blob: Blob {
                        digest,
                        size: hashed,
                    },
                    new: false,
                });
            }
        }
        self.put_file(path)
    }

    /// A writer for producers that push bytes (such as an archive being
    /// packed); finish with [`BlobWriter::commit`]. Dropping it uncommitted
    /// removes its temp file.
    pub fn writer(&self) -> R<BlobWriter> {
        BlobWriter::new(self)
    }

    /// Opens the blob named `digest` for reading; the reader verifies the
    /// content as it goes (see [`BlobReader`]).
    pub fn open_blob(&self, digest: &Digest) -> R<BlobReader> {
        BlobReader::open(self.object_path(digest), *digest)
    }

    /// Copies the blob named `digest` to a new file at `dest`, verified:
    /// the bytes go to a temp file beside `dest` that is renamed into place
    /// only once the digest matched, so `dest` never holds corrupt content.
    pub fn export(&self, digest: &Digest, dest: &Path) -> R<Blob> {
        reader::export(self, digest, dest)
    }

    /// Every stored blob, sorted by digest. Files under `objects/` whose
    /// names are not digests are skipped (see [`BlobStore::verify_all`]).
    pub fn blobs(&self) -> R<Vec<Blob>> {
        let mut blobs = Vec::new();
        verify::walk(&self.objects, |digest, path| {
            let size = fs::symlink_metadata(path).map_err(|source| Error::Access {
                path: path.to_owned(),
                source,
            })?;
            blobs.push(Blob {
                digest,
                size: size.len(),
            });
            Ok(())
        })?;
        Ok(blobs)
    }

    /// Deletes the blob named `digest`. Returns whether it was stored.
    /// Retention decides *whether*; this only does it.
    pub fn remove(&self, digest: &Digest) -> R<bool> {
        let path = self.object_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(Error::Access { path, source }),
        }
    }

    /// Re-hashes every stored blob and compares the store with `index`, the
    /// digests the run database references.
    ///
    /// Reports blobs whose content does not match their name (corrupt),
    /// indexed digests with no blob (missing), blobs nothing indexes
    /// (orphaned), blobs that could not be read, and files under `objects/`
    /// that are not blobs at all (stray). Reads every byte: cost is the size
    /// of the store at hashing speed.
    pub fn verify_all(&self, index: &HashSet<Digest>) -> R<VerifyReport> {
        verify::verify_all(&self.objects, index)
    }
}
