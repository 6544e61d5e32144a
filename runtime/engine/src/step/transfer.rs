//! The store around a job's steps: downloads and cache restore before the
//! first step, uploads and cache save after the last, and the seed's
//! `artifact:` / `download_artifact:` steps (see [`crate::artifacts`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use kiln_pipeline::expr::Status;
use kiln_pipeline::{ArtifactSpec, JobId, StepAction};

use super::StepRunner;
use crate::artifacts::{ArtifactStore, CacheRequest, DownloadRequest, Transfer, UploadRequest};
use crate::event::{Event, StepResult};

/// The cache of one attempt: its rendered keys and whether the exact key hit.
pub(crate) struct CacheState {
    key: String,
    restore_keys: Vec<String>,
    exact_hit: bool,
}

impl StepRunner<'_> {
    fn store(&self, what: &str) -> Result<Arc<dyn ArtifactStore>, String> {
        self.shared.options.artifacts.clone().ok_or_else(|| {
            format!(
                "job `{}` uses {what}, but this run has no artifact store",
                self.job.name
            )
        })
    }

    fn report(&self, transfers: Vec<Transfer>) {
        for transfer in transfers {
            self.shared.emit(Event::Transfer {
                job: self.job.id,
                transfer,
            });
        }
    }

    fn job_names(&self, ids: impl IntoIterator<Item = JobId>) -> Vec<String> {
        ids.into_iter()
            .map(|id| self.shared.plan.jobs[id.0].name.clone())
            .collect()
    }

    /// Downloads from the needed jobs, then restores the cache.
    pub(super) async fn before_steps(&mut self) -> Result<(), String> {
        // A job that downloads with seed `download_artifact:` steps says
        // what it wants there; it gets no implicit downloads on top.
        let seed_downloads = self
            .job
            .steps
            .iter()
            .any(|s| matches!(s.action, StepAction::DownloadArtifact { .. }));
        // Implicit downloads skip the store when no needed job can have
        // uploaded anything: opening it costs more than a no-op job.
        let jobs = &self.shared.plan.jobs;
        let wants_download = !self.job.needs.is_empty()
            && match &self.job.download {
                Some(names) => !names.is_empty(),
                None => {
                    !seed_downloads
                        && self
                            .job
                            .needs
                            .iter()
                            .any(|need| jobs[need.0].may_upload_artifacts())
                }
            };
        if wants_download {
            // Implicit downloads need a store only if there is one to ask.
            let store = match (&self.shared.options.artifacts, &self.job.download) {
                (Some(store), _) => Some(store.clone()),
                (None, Some(_)) => Some(self.store("`download:`")?),
                (None, None) => None,
            };
            if let Some(store) = store {
                let request = DownloadRequest {
                    run: self.shared.options.run_id,
                    job: self.job.name.clone(),
                    from: self.job_names(self.job.needs.iter().copied()),
                    names: self.job.download.clone(),
                    workspace: self.shared.options.workspace.clone(),
                };
                let transfers = store.download(request).await?;
                self.report(transfers);
            }
        }
        let Some(spec) = &self.job.cache else {
            return Ok(());
        };
        let store = self.store("`cache:`")?;
        let (key, restore_keys) =
            self.with_context(Status::Success, serde_json::Map::new(), |_, cx| {
                let key = spec
                    .key
                    .render(cx)
                    .map_err(|e| format!("cannot evaluate `cache.key`: {e}"))?;
                let restore_keys = spec
                    .restore_keys
                    .iter()
                    .map(|t| t.render(cx))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("cannot evaluate `cache.restore-keys`: {e}"))?;
                Ok::<_, String>((key, restore_keys))
            })?;
        let outcome = store
            .restore_cache(self.cache_request(&key, &restore_keys))
            .await?;
        self.report(vec![outcome.transfer]);
        self.cache = Some(CacheState {
            key,
            restore_keys,
            exact_hit: outcome.exact_hit,
        });
        Ok(())
    }

    fn cache_request(&self, key: &str, restore_keys: &[String]) -> CacheRequest {
        CacheRequest {
            run: self.shared.options.run_id,
            job: self.job.name.clone(),
            pipeline: self.shared.plan.name.clone(),
            key: key.to_owned(),
            restore_keys: restore_keys.to_vec(),
            paths: self
                .job
                .cache
                .as_ref()
                .map(|c| c.paths.clone())
                .unwrap_or_default(),
            workspace: self.shared.options.workspace.clone(),
        }
    }

    /// After every step succeeded: uploads `artifacts:`, saves the cache
    /// unless its exact key was restored.
    pub(super) async fn after_steps(&mut self) -> Result<(), String> {
        if !self.job.artifacts.is_empty() {
            let store = self.store("`artifacts:`")?;
            // One at a time, so each upload is reported as it lands even
            // when a later one fails.
            for spec in &self.job.artifacts {
                let transfers = store
                    .upload(self.upload_request(vec![spec.clone()]))
                    .await?;
                self.report(transfers);
            }
        }
        let Some(cache) = &self.cache else {
            return Ok(());
        };
        if cache.exact_hit {
            return Ok(());
        }
        let store = self.store("`cache:`")?;
        let transfer = store
            .save_cache(self.cache_request(&cache.key, &cache.restore_keys))
            .await?;
        self.report(vec![transfer]);
        Ok(())
    }

    fn upload_request(&self, artifacts: Vec<ArtifactSpec>) -> UploadRequest {
        UploadRequest {
            run: self.shared.options.run_id,
            job: self.job.name.clone(),
            artifacts,
            workspace: self.shared.options.workspace.clone(),
        }
    }

    /// The seed's `artifact: PATH` step.
    pub(super) async fn upload_step(&self, index: usize, name: &str, path: &str) -> StepResult {
        let request = self.upload_request(vec![ArtifactSpec {
            name: name.to_owned(),
            paths: vec![path.to_owned()],
        }]);
        let result = match self.store("an `artifact` step") {
            Ok(store) => store.upload(request).await,
            Err(message) => Err(message),
        };
        self.step_result(index, result)
    }

    /// The seed's `download_artifact: PATH` step: from any job this one
    /// needs, directly or not.
    pub(super) async fn download_step(&self, index: usize, name: &str) -> StepResult {
        let request = DownloadRequest {
            run: self.shared.options.run_id,
            job: self.job.name.clone(),
            from: self.job_names(self.ancestors()),
            names: Some(vec![name.to_owned()]),
            workspace: self.shared.options.workspace.clone(),
        };
        let result = match self.store("a `download_artifact` step") {
            Ok(store) => store.download(request).await,
            Err(message) => Err(message),
        };
        self.step_result(index, result)
    }

    fn step_result(&self, index: usize, result: Result<Vec<Transfer>, String>) -> StepResult {
        match result {
            Ok(transfers) => {
                self.report(transfers);
                StepResult::Success
            }
            Err(message) => {
                self.note(index, &message);
                StepResult::Failed
            }
        }
    }

    /// Every job this one needs, directly or through others.
    fn ancestors(&self) -> BTreeSet<JobId> {
        let jobs = &self.shared.plan.jobs;
        let mut seen = BTreeSet::new();
        let mut stack: Vec<JobId> = self.job.needs.clone();
        while let Some(id) = stack.pop() {
            if seen.insert(id) {
                stack.extend(jobs[id.0].needs.iter().copied());
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests;
