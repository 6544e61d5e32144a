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
//! - a download resolves the name, records a reference for its run and
//!   opens the blob file in one transaction; once open, the bytes stay
//!   readable even if the name is unlinked later;
//! - an upload commits the blob, then in one transaction checks the blob is
//!   still there and inserts the index row (re-storing it if a `gc` had just
//!   taken it for an orphan);
//! - `gc` never deletes a blob that is pinned, referenced by a live run, or
//!   indexed by an entry it keeps.
//!
//! Other crates use this by name: [`Artifacts::put`] / [`Artifacts::get`]
//! are what the `artifacts` WIT import of plugins maps onto.

mod cache;
mod error;
pub mod retention;

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, Row, TransactionBehavior};

use crate::archive::{self, Compression, Limits};
use crate::cas::{BlobStore, Digest, VerifyReport};
use crate::{RunId, lock, now_ms};

pub use cache::{CacheEntry, CacheHit, CacheSaved};
pub use error::{Error, Result};

/// How often an upload re-stores a blob that a concurrent `gc` removed
/// between its commit and its indexing before giving up.
const INDEX_ATTEMPTS: usize = 3;

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
    fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Tree => "tree",
        }
    }

    fn parse(text: &str) -> Self {
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
                self.pack(|out| archive::pack(&full, Compression::Zstd, out))?,
            )
        } else {
            return Err(Error::NotUploadable { path: full });
        };
        let repack = |this: &mut Self| -> Result<crate::cas::Stored> {
            Ok(if kind == Kind::File {
                this.blobs.put_file(&full)?
            } else {
                this.pack(|out| archive::pack(&full, Compression::Zstd, out))?
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
            this.pack(|out| archive::pack_files(workspace, files, Compression::Zstd, out))
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
    /// wins over the archive's generic write error.
    fn pack(
        &self,
        pack: impl FnOnce(&mut crate::cas::BlobWriter) -> archive::Result<archive::Summary>,
    ) -> Result<crate::cas::Stored> {
        let mut writer = self.blobs.writer()?;
        if let Err(err) = pack(&mut writer) {
            return Err(match writer.commit() {
                Err(blob) => Error::Blob(blob),
                Ok(_) => Error::Archive(err),
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

    /// Artifacts named `name` in `run` uploaded by one of `jobs` (any job
    /// if `None`), in job order of upload.
    pub fn find(&self, run: RunId, name: &str, jobs: Option<&[String]>) -> Result<Vec<Artifact>> {
        let all = self.query(
            "WHERE a.run = ?1 AND a.name = ?2 ORDER BY a.created_ms, a.job",
            (run, name),
        )?;
        Ok(match jobs {
            Some(jobs) => all.into_iter().filter(|a| jobs.contains(&a.job)).collect(),
            None => all,
        })
    }

    /// Every artifact uploaded in `run` by one of `jobs`, in upload order.
    pub fn of_jobs(&self, run: RunId, jobs: &[String]) -> Result<Vec<Artifact>> {
        let all = self.query(
            "WHERE a.run = ?1 ORDER BY a.created_ms, a.job, a.name",
            [run],
        )?;
        Ok(all.into_iter().filter(|a| jobs.contains(&a.job)).collect())
    }

    fn find_one(&self, run: RunId, job: Option<&str>, name: &str) -> Result<Artifact> {
        let found = self.find(run, name, None)?;
        let found: Vec<Artifact> = found
            .into_iter()
            .filter(|a| job.is_none_or(|j| a.job == j))
            .collect();
        one(found, Some(run), name, "pass the job")
    }

    /// Every artifact, newest first; only `run`'s if given.
    pub fn list(&self, run: Option<RunId>) -> Result<Vec<Artifact>> {
        match run {
            Some(run) => self.query(
                "WHERE a.run = ?1 ORDER BY a.run DESC, a.created_ms, a.name",
                [run],
            ),
            None => self.query("ORDER BY a.run DESC, a.created_ms, a.name", []),
        }
    }

    /// Resolves what a user typed for `kiln artifacts get|pin`: a digest
    /// (`sha256:…` or 64 hex characters), or a name — the newest run's
    /// artifact of that name, or `run`'s if given.
    pub fn resolve(&self, what: &str, run: Option<RunId>) -> Result<Resolved> {
        if let Ok(digest) = what.parse::<Digest>() {
            let users = self.query("WHERE a.digest = ?1 ORDER BY a.run DESC", [digest.to_hex()])?;
            return Ok(Resolved::Digest(digest, users.into_iter().next()));
        }
        check_name(what)?;
        let mut found = match run {
            Some(run) => self.find(run, what, None)?,
            None => self.query("WHERE a.name = ?1 ORDER BY a.run DESC, a.job", [what])?,
        };
        if run.is_none()
            && let Some(newest) = found.first().map(|a| a.run)
        {
            found.retain(|a| a.run == newest);
        }
        let hint = if run.is_some() {
            "several jobs uploaded it; pass its digest"
        } else {
            "pass `--run` or the digest"
        };
        one(found, run, what, hint).map(Resolved::Artifact)
    }

    /// Writes artifact `name` of `run` to `dest` (see [`Artifacts::export`])
    /// and references its blob for `run` until the run ends: the by-name
    /// read that plugins' `artifacts.get` maps onto. Fails with
    /// [`Error::Ambiguous`] when several jobs of the run uploaded that name.
    pub fn get(&mut self, run: RunId, name: &str, dest: &Path) -> Result<Artifact> {
        check_name(name)?;
        let artifact = one(
            self.find(run, name, None)?,
            Some(run),
            name,
            "several jobs uploaded it",
        )?;
        self.export(&artifact, Some(run), dest)?;
        Ok(artifact)
    }

    /// Downloads `artifact` for `reader` (a live run, which thereby
    /// references the blob until it ends) into `workspace`, at the path it
    /// was uploaded from. Returns the bytes written.
    pub fn download(
        &mut self,
        artifact: &Artifact,
        reader: Option<RunId>,
        workspace: &Path,
    ) -> Result<u64> {
        let dest = if artifact.path.is_empty() {
            workspace.to_owned()
        } else {
            workspace.join(&artifact.path)
        };
        self.export(artifact, reader, &dest)
    }

    /// Writes `artifact` to `dest`: a file artifact becomes the file `dest`,
    /// a tree is extracted into the directory `dest`. Verified as it is
    /// read; a corrupt blob is an error naming it and a file destination is
    /// never left holding corrupt bytes.
    pub fn export(
        &mut self,
        artifact: &Artifact,
        reader: Option<RunId>,
        dest: &Path,
    ) -> Result<u64> {
        let blob = self.open_referenced(&[artifact.digest], reader, |tx| {
            tx.execute(
                "UPDATE artifacts SET accessed_ms = ?4 WHERE run = ?1 AND job = ?2 AND name = ?3",
                (artifact.run, &artifact.job, &artifact.name, now_ms()),
            )
            .map(drop)
        })?;
        let reader = blob.into_iter().next().expect("one blob was opened");
        self.write_out(artifact.kind, reader, dest)
    }

    fn write_out(&self, kind: Kind, blob: crate::cas::BlobReader, dest: &Path) -> Result<u64> {
        match kind {
            Kind::File => {
                if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                    fs::create_dir_all(parent).map_err(|source| Error::Destination {
                        path: parent.to_owned(),
                        source,
                    })?;
                }
                let size = blob.size();
                crate::cas::export_reader(blob, dest)?;
                Ok(size)
            }
            Kind::Tree => {
                let summary = archive::unpack(blob, Compression::Zstd, dest, &self.limits)?;
                Ok(summary.bytes)
            }
        }
    }

    /// In one write transaction: records `reader`'s references to
    /// `digests`, runs `touch`, and opens every blob, so a concurrent `gc`
    /// either ran before (and the lookup that led here would have failed)
    /// or runs after and sees the references.
    fn open_referenced(
        &mut self,
        digests: &[Digest],
        reader: Option<RunId>,
        touch: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<Vec<crate::cas::BlobReader>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(run) = reader {
            for digest in digests {
                tx.execute(
                    "INSERT OR IGNORE INTO refs (digest, run, created_ms) VALUES (?1, ?2, ?3)",
                    (digest.to_hex(), run, now_ms()),
                )?;
            }
        }
        touch(&tx)?;
        let mut readers = Vec::with_capacity(digests.len());
        for digest in digests {
            readers.push(self.blobs.open_blob(digest)?);
        }
        tx.commit()?;
        Ok(readers)
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

    fn query(&self, filter: &str, params: impl rusqlite::Params) -> Result<Vec<Artifact>> {
        let sql = format!(
            "SELECT a.run, a.job, a.name, a.kind, a.path, a.digest, a.size, a.created_ms,
                    a.accessed_ms, p.digest IS NOT NULL
             FROM artifacts a LEFT JOIN pins p ON p.digest = a.digest {filter}"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params, artifact_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// Whether run `run` is being executed by a live process (it holds the
/// run's lock under `root/runs/`).
fn is_live(root: &Path, run: RunId) -> Result<bool> {
    let path = root.join("runs").join(format!("{run}.lock"));
    Ok(lock::probe(&path)? == lock::Probe::Held)
}

/// What `kiln artifacts get|pin` named.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// A named artifact.
    Artifact(Artifact),
    /// A digest, with the newest artifact that uses it (if any).
    Digest(Digest, Option<Artifact>),
}

fn one(
    found: Vec<Artifact>,
    run: Option<RunId>,
    name: &str,
    hint: &'static str,
) -> Result<Artifact> {
    match found.len() {
        0 => Err(Error::NotFound {
            run,
            name: name.to_owned(),
        }),
        1 => Ok(found.into_iter().next().expect("one")),
        _ => Err(Error::Ambiguous {
            name: name.to_owned(),
            candidates: found
                .iter()
                .map(|a| format!("run {} job `{}`", a.run, a.job))
                .collect::<Vec<_>>()
                .join(", "),
            hint,
        }),
    }
}

fn check_name(name: &str) -> Result<()> {
    kiln_pipeline::artifact::check_name(name).map_err(|message| Error::InvalidName { message })
}

fn artifact_from_row(row: &Row<'_>) -> rusqlite::Result<Artifact> {
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

/// Whether the error is the blob store's full-disk error.
pub fn is_disk_full(err: &Error) -> bool {
    matches!(err, Error::Blob(crate::cas::Error::DiskFull { .. }))
}
