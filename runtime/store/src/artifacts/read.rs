//! Finding artifacts and writing them out: by name for jobs, plugins and
//! `kiln artifacts get`, each read verified and, for a run, referenced.

use std::fs;
use std::path::Path;

use rusqlite::TransactionBehavior;

use super::record::artifact_from_row;
use super::{Artifact, Artifacts, Error, Kind, Resolved, Result, check_name};
use crate::archive::{self, Compression};
use crate::cas::Digest;
use crate::{RunId, now_ms};

impl Artifacts {
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

    pub(super) fn find_one(&self, run: RunId, job: Option<&str>, name: &str) -> Result<Artifact> {
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
        // Only one run is left at this point: the digest is what tells
        // the jobs' uploads apart.
        let hint = "several jobs uploaded it; pass its digest (`kiln artifacts list` shows them)";
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
    /// read; a corrupt blob is an error naming it, and `dest` receives
    /// nothing of it (a file goes through a temp file, a tree through a
    /// staging directory).
    pub fn export(
        &mut self,
        artifact: &Artifact,
        reader: Option<RunId>,
        dest: &Path,
    ) -> Result<u64> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let touched = tx.execute(
            "UPDATE artifacts SET accessed_ms = ?4 WHERE run = ?1 AND job = ?2 AND name = ?3",
            (artifact.run, &artifact.job, &artifact.name, now_ms()),
        )?;
        if touched == 0 {
            // A gc removed it since it was looked up: gone, not broken.
            return Err(Error::NotFound {
                run: Some(artifact.run),
                name: artifact.name.clone(),
            });
        }
        let mut blobs = reference_and_open(&tx, &self.blobs, &[artifact.digest], reader)?;
        tx.commit()?;
        let blob = blobs.pop().expect("one blob was opened");
        self.write_out(artifact.kind, blob, dest)
    }

    pub(super) fn write_out(
        &self,
        kind: Kind,
        mut blob: crate::cas::BlobReader,
        dest: &Path,
    ) -> Result<u64> {
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
                let summary =
                    archive::unpack_staged(&mut blob, Compression::Zstd, dest, &self.limits)
                        .map_err(blob_error)?;
                Ok(summary.bytes)
            }
        }
    }
    pub(super) fn query(
        &self,
        filter: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<Artifact>> {
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

/// In the caller's write transaction: records `reader`'s references to
/// `digests` and opens every blob. The transaction must also be the one
/// that found the digests, so a concurrent `gc` (which deletes only under
/// the write lock) either ran before the lookup, which then found nothing,
/// or runs after the commit and sees the references. An open blob stays
/// readable even if its name is unlinked later.
pub(super) fn reference_and_open(
    tx: &rusqlite::Transaction<'_>,
    blobs: &crate::cas::BlobStore,
    digests: &[Digest],
    reader: Option<RunId>,
) -> Result<Vec<crate::cas::BlobReader>> {
    if let Some(run) = reader {
        for digest in digests {
            tx.execute(
                "INSERT OR IGNORE INTO refs (digest, run, created_ms) VALUES (?1, ?2, ?3)",
                (digest.to_hex(), run, now_ms()),
            )?;
        }
    }
    let mut readers = Vec::with_capacity(digests.len());
    for digest in digests {
        readers.push(blobs.open_blob(digest)?);
    }
    Ok(readers)
}

/// An extraction error, or the blob store's own error when the blob under
/// the archive is what failed: a corrupt blob is named as such, not as a
/// tar or zstd stream that made no sense.
fn blob_error(err: archive::Error) -> Error {
    let source = match err {
        archive::Error::Read { source } if crate::cas::Error::from_io(&source).is_some() => source,
        other => return Error::Archive(other),
    };
    let kind = source.kind();
    let read = |source| Error::Archive(archive::Error::Read { source });
    match source
        .into_inner()
        .map(|inner| inner.downcast::<crate::cas::Error>())
    {
        Some(Ok(blob)) => Error::Blob(*blob),
        Some(Err(inner)) => read(std::io::Error::new(kind, inner)),
        None => read(std::io::Error::from(kind)),
    }
}
