//! Named artifacts and caches over the blob store, indexed in `kiln.db`.
//!
//! An artifact is one blob: a regular file stored as is (`file`), or a
//! deterministic zstd tar of a directory or of a selection of files
//! (`tree`). The index row says which run and job uploaded it, under what
//! name, where in the workspace it came from, its size, when it was created
//! and last used. Pins and the references of running jobs protect blobs
//! from [`retention`].
//!
//! **Concurrency.** Several kiln processes may use one store. Every change
//! that could race with `gc` happens inside an SQLite write (`IMMEDIATE`)
//! transaction, and `gc` deletes blob files only while it holds that write
//! lock. So:
//! - a download (and a cache restore) resolves the name, records a
//!   reference for its run and opens the blob files in one transaction;
//!   once open, the bytes stay readable even if the name is unlinked later;
//! - an upload commits the blob, then in one transaction checks the blob is
//!   still there and inserts the index row (re-storing it if a `gc` had just
//!   taken it for an orphan);
//! - `gc` never deletes a blob that is pinned, referenced by a live run, or
//!   indexed by an entry it keeps; it commits its index changes before it
//!   deletes any file (in a second transaction that checks again), so a
//!   crash leaves orphaned blobs, never entries without their blob.
//!
//! Other crates use this by name: [`Artifacts::put`] / [`Artifacts::get`]
//! are what the `artifacts` WIT import of plugins maps onto.

mod cache;
mod error;
mod read;
mod record;
pub mod retention;

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, TransactionBehavior};

use crate::archive::{self, Compression, Limits};
use crate::cas::{BlobStore, Digest};
use crate::{RunId, lock, now_ms};

pub use cache::{CacheEntry, CacheHit, CacheSaved};
pub use error::{Error, Result};
pub use record::{Artifact, Kind, Resolved, Verification};

pub(crate) use record::from_ms;

/// How often an upload re-stores a blob that a concurrent `gc` removed
/// between its commit and its indexing before giving up.
const INDEX_ATTEMPTS: usize = 3;

/// The artifact and cache index of a state directory, with its blobs.
///
/// Holds its own SQLite connection; use one per thread. All methods block
/// on disk I/O: call them from a blocking thread in async code.
#[derive(Debug)]
pub struct Artifacts {
    conn: Connection,
    root: PathBuf,
    blobs: BlobStore,
    limits: Limits,
}

impl Artifacts {
    /// Opens the index and blob store under the state directory `root`
    /// (creating and migrating as needed). Temp files of uploads whose
    /// process died are removed here.
    pub fn open(root: &Path) -> Result<Self> {
        fs::create_dir_all(root).map_err(|source| crate::StoreError::Io {
            path: root.to_owned(),
            source,
        })?;
        let (conn, _) = crate::connect(root)?;
        Ok(Self {
            conn,
            root: root.to_owned(),
            blobs: BlobStore::open(root)?,
            limits: Limits::default(),
        })
    }

    /// Sets the caps on tree artifacts and caches (default
    /// [`Limits::default`]): a directory over them is refused when it is
    /// uploaded or saved, and an archive over them when it is extracted.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The blob store underneath.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Uploads the file or directory at `workspace/path` as artifact `name`
    /// of `job` in `run`, replacing an artifact of the same run, job and
    /// name (a retried job uploads again). A directory becomes a tree.
    pub fn put(
        &mut self,
        run: RunId,
        job: &str,
        name: &str,
        workspace: &Path,
        path: &str,
    ) -> Result<Artifact> {
        check_name(name)?;
        let full = workspace.join(path);
        let meta = fs::metadata(&full).map_err(|source| Error::Source {
            path: full.clone(),
            source,
        })?;
        let rel = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_owned();
        let (kind, stored) = if meta.is_file() {
            (Kind::File, self.put_file(&full)?)
        } else if meta.is_dir() {
            (
                Kind::Tree,
                self.pack(|out, limits| archive::pack(&full, Compression::Zstd, limits, out))?,
            )
        } else {
            return Err(Error::NotUploadable { path: full });
        };
        let repack = |this: &mut Self| -> Result<crate::cas::Stored> {
            Ok(if kind == Kind::File {
                this.blobs.put_file(&full)?
            } else {
                this.pack(|out, limits| archive::pack(&full, Compression::Zstd, limits, out))?
            })
        };
        self.index(run, job, name, kind, &rel, stored, repack)
    }

    /// Stores a file, writing nothing when the same content is stored
    /// already (see [`BlobStore::put_file_dedup`]).
    fn put_file(&self, path: &Path) -> Result<crate::cas::Stored> {
        let conn = &self.conn;
        let known = |size: u64| {
            conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM artifacts WHERE size = ?1)
                     OR EXISTS (SELECT 1 FROM cache_paths WHERE size = ?1)",
                [size as i64],
                |r| r.get::<_, bool>(0),
            )
            .unwrap_or(false)
        };
        Ok(self.blobs.put_file_dedup(path, known)?)
    }

    /// Uploads the files `files` (relative to `workspace`, as matched by a
    /// glob) as one tree artifact rooted at the workspace.
    pub fn put_files(
        &mut self,
        run: RunId,
        job: &str,
        name: &str,
        workspace: &Path,
        files: &[String],
    ) -> Result<Artifact> {
        check_name(name)?;
        let pack = |this: &mut Self| {
            this.pack(|out, limits| {
                archive::pack_files(workspace, files, Compression::Zstd, limits, out)
            })
        };
        let stored = pack(self)?;
        self.index(run, job, name, Kind::Tree, "", stored, pack)
    }

    /// Stores what `source` yields as artifact `name` of `job` in `run`:
    /// for producers without a file on disk (a plugin streaming its
    /// output). `kind` says how a download treats the bytes (a `Tree` must
    /// be a zstd tar, checked entry by entry when extracted); `path` is
    /// where a download into a workspace puts it.
    pub fn put_reader(
        &mut self,
        run: RunId,
        job: &str,
        name: &str,
        kind: Kind,
        path: &str,
        source: impl io::Read,
    ) -> Result<Artifact> {
        check_name(name)?;
        kiln_pipeline::artifact::check_path(if path.is_empty() { "." } else { path }, true)
            .map_err(|message| Error::InvalidName { message })?;
        let stored = self.blobs.put_reader(source)?;
        let digest = stored.blob.digest;
        // The bytes are gone once read: a blob a gc took meanwhile cannot
        // be stored again, so that race is reported, never papered over.
        self.index(run, job, name, kind, path, stored, move |_| {
            Err(Error::Vanished { digest })
        })
    }

    /// Packs into a new blob; the blob writer's typed error (disk full)
    /// wins over the archive's generic write error, and a failed packing
    /// stores nothing.
    fn pack(
        &self,
        pack: impl FnOnce(&mut crate::cas::BlobWriter, &Limits) -> archive::Result<archive::Summary>,
    ) -> Result<crate::cas::Stored> {
        let mut writer = self.blobs.writer()?;
        if let Err(err) = pack(&mut writer, &self.limits) {
            // Never committed: a partial archive must not become a blob.
            return Err(match writer.abandon() {
                Some(blob) => Error::Blob(blob),
                None => Error::Archive(err),
            });
        }
        Ok(writer.commit()?)
    }

    #[allow(clippy::too_many_arguments)]
    fn index(
        &mut self,
        run: RunId,
        job: &str,
        name: &str,
        kind: Kind,
        path: &str,
        mut stored: crate::cas::Stored,
        mut again: impl FnMut(&mut Self) -> Result<crate::cas::Stored>,
    ) -> Result<Artifact> {
        for _ in 0..INDEX_ATTEMPTS {
            let blob = stored.blob;
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Checked under the write lock: a gc deletes only while holding it.
            let intact = fs::symlink_metadata(self.blobs.object_path(&blob.digest))
                .is_ok_and(|m| m.is_file() && m.len() == blob.size);
            if intact {
                let now = now_ms();
                tx.execute(
                    "INSERT OR REPLACE INTO artifacts
                       (run, job, name, kind, path, digest, size, created_ms, accessed_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                    (
                        run,
                        job,
                        name,
                        kind.as_str(),
                        path,
                        blob.digest.to_hex(),
                        blob.size as i64,
                        now,
                    ),
                )?;
                tx.commit()?;
                return self.find_one(run, Some(job), name);
            }
            drop(tx);
            stored = again(self)?;
        }
        Err(Error::Vanished {
            digest: stored.blob.digest,
        })
    }

    /// Pins `digest`: retention never deletes it, nor the entries that
    /// name it. Returns whether it was newly pinned.
    pub fn pin(&mut self, digest: &Digest) -> Result<bool> {
        if !self.blobs.contains(digest) {
            return Err(crate::cas::Error::NotFound { digest: *digest }.into());
        }
        let changed = self.conn.execute(
            "INSERT OR IGNORE INTO pins (digest, pinned_ms) VALUES (?1, ?2)",
            (digest.to_hex(), now_ms()),
        )?;
        Ok(changed > 0)
    }

    /// Removes a pin. Returns whether there was one.
    pub fn unpin(&mut self, digest: &Digest) -> Result<bool> {
        let changed = self
            .conn
            .execute("DELETE FROM pins WHERE digest = ?1", [digest.to_hex()])?;
        Ok(changed > 0)
    }

    /// Drops the references `run` took (called when the run ends; `gc`
    /// also ignores references of runs that are no longer live).
    pub fn release(&mut self, run: RunId) -> Result<()> {
        self.conn
            .execute("DELETE FROM refs WHERE run = ?1", [run])?;
        Ok(())
    }

    /// Re-hashes every blob and compares the store with the index:
    /// corrupt, missing, orphaned, unreadable and stray files, with the
    /// entries that use each corrupt or missing blob.
    pub fn verify(&self) -> Result<Verification> {
        let index = self.indexed_digests()?;
        let report = self.blobs.verify_all(&index)?;
        let mut users = Vec::new();
        let bad = report
            .corrupt
            .iter()
            .map(|(d, _)| *d)
            .chain(report.missing.iter().copied());
        for digest in bad {
            users.push((digest, self.users_of(&digest)?));
        }
        Ok(Verification { report, users })
    }

    /// Descriptions of the index entries that use `digest`.
    pub fn users_of(&self, digest: &Digest) -> Result<Vec<String>> {
        let mut out: Vec<String> = self
            .query(
                "WHERE a.digest = ?1 ORDER BY a.run, a.job",
                [digest.to_hex()],
            )?
            .into_iter()
            .map(|a| format!("artifact `{}` of run {} (job `{}`)", a.name, a.run, a.job))
            .collect();
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT key FROM cache_paths WHERE digest = ?1 ORDER BY key")?;
        let keys: Vec<String> = stmt
            .query_map([digest.to_hex()], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        out.extend(keys.into_iter().map(|k| format!("cache `{k}`")));
        Ok(out)
    }

    fn indexed_digests(&self) -> Result<HashSet<Digest>> {
        let mut out = HashSet::new();
        for sql in [
            "SELECT digest FROM artifacts",
            "SELECT digest FROM cache_paths",
        ] {
            let mut stmt = self.conn.prepare(sql)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            for hex in rows {
                if let Ok(digest) = hex?.parse() {
                    out.insert(digest);
                }
            }
        }
        Ok(out)
    }
}

/// Whether run `run` is being executed by a live process (it holds the
/// run's lock under `root/runs/`).
fn is_live(root: &Path, run: RunId) -> Result<bool> {
    let path = root.join("runs").join(format!("{run}.lock"));
    Ok(lock::probe(&path)? == lock::Probe::Held)
}

fn check_name(name: &str) -> Result<()> {
    kiln_pipeline::artifact::check_name(name).map_err(|message| Error::InvalidName { message })
}

/// Whether the error is the blob store's full-disk error.
pub fn is_disk_full(err: &Error) -> bool {
    matches!(err, Error::Blob(crate::cas::Error::DiskFull { .. }))
}

#[cfg(test)]
mod tests;
