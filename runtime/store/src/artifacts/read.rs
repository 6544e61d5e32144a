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

    pub(super) fn write_out(
        &self,
        kind: Kind,
        blob: crate::cas::BlobReader,
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
                let summary = archive::unpack(blob, Compression::Zstd, dest, &self.limits)?;
                Ok(summary.bytes)
            }
        }
    }

    /// In one write transaction: records `reader`'s references to
    /// `digests`, runs `touch`, and opens every blob, so a concurrent `gc`
    /// either ran before (and the lookup that led here would have failed)
    /// or runs after and sees the references.
    pub(super) fn open_referenced(
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
