//! `kiln run --job J`: a plan cut down to J and everything it needs.

use std::collections::HashMap;

use crate::assemble;
use crate::plan::{JobId, Plan};
use crate::suggest;

/// A `--job` name that matches no job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("no job named `{name}` in the pipeline{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
pub struct SelectError {
    /// The name as given.
    pub name: String,
    /// The closest job name or key, if any is close.
    pub suggestion: Option<String>,
    /// Every selectable name (job keys, then expanded matrix names), for a
    /// "valid jobs are …" list.
    pub available: Vec<String>,
}

impl Plan {
    /// The sub-plan that runs the named jobs and everything they need,
    /// transitively, in the original order with new, dense [`JobId`]s.
    ///
    /// A name is a job key (`test`: every matrix instance of it) or an
    /// expanded instance name (`test (shard=1)`).
    pub fn select(&self, names: &[String]) -> Result<Plan, SelectError> {
        let mut by_name: HashMap<&str, Vec<JobId>> = HashMap::new();
        for job in &self.jobs {
            by_name.entry(job.key.as_str()).or_default().push(job.id);
            if job.name != job.key {
                by_name.entry(job.name.as_str()).or_default().push(job.id);
            }
        }
        let mut keep = vec![false; self.jobs.len()];
        let mut stack: Vec<JobId> = Vec::new();
        for name in names {
            let Some(ids) = by_name.get(name.as_str()) else {
                return Err(self.unknown(name));
            };
            stack.extend(ids);
        }
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut keep[id.0], true) {
                continue;
            }
            stack.extend(self.jobs[id.0].needs.iter().filter(|n| !keep[n.0]));
        }
        let mut renumber = vec![usize::MAX; self.jobs.len()];
        let mut jobs = Vec::new();
        for job in self.jobs.iter().filter(|j| keep[j.id.0]) {
            renumber[job.id.0] = jobs.len();
            let mut job = job.clone();
            job.id = JobId(jobs.len());
            jobs.push(job);
        }
        for job in &mut jobs {
            for need in &mut job.needs {
                *need = JobId(renumber[need.0]);
            }
        }
        Ok(assemble::from_jobs(
            self.name.clone(),
            self.env.clone(),
            self.timeout,
            jobs,
        ))
    }

    fn unknown(&self, name: &str) -> SelectError {
        let mut available: Vec<String> = Vec::new();
        for job in &self.jobs {
            // Matrix instances of one key are contiguous.
            if available.last() != Some(&job.key) {
                available.push(job.key.clone());
            }
        }
        available.extend(
            self.jobs
                .iter()
                .filter(|j| j.name != j.key)
                .map(|j| j.name.clone()),
        );
        let suggestion =
            suggest::closest(name, available.iter().map(String::as_str)).map(str::to_owned);
        SelectError {
            name: name.to_owned(),
            suggestion,
            available,
        }
    }
}
