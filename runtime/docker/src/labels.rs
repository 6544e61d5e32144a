//! Labels on everything kiln creates, and the names that go with them.
//!
//! `kiln.state` holds the canonical path of the state directory, so `kiln
//! gc` in one project never touches another project's runs; `kiln.run` and
//! `kiln.job` say which run and job a resource belongs to. Deployed
//! instances carry `kiln.state` and `kiln.deploy.*` instead of a run: they
//! outlive the run that started them.

use std::collections::HashMap;

/// The label naming the state directory.
pub const STATE: &str = "kiln.state";
/// The label naming the run number.
pub const RUN: &str = "kiln.run";
/// The label naming the job.
pub const JOB: &str = "kiln.job";
/// The deployed service an instance container belongs to.
pub const DEPLOY_SERVICE: &str = "kiln.deploy.service";
/// The version an instance container runs.
pub const DEPLOY_VERSION: &str = "kiln.deploy.version";
/// The rollout that started an instance container.
pub const DEPLOY_ROLLOUT: &str = "kiln.deploy.rollout";
/// The instance's name (`web-v2-r7-1`).
pub const DEPLOY_INSTANCE: &str = "kiln.deploy.instance";
/// The instance's log file, which any `kiln` that stops it completes.
pub const DEPLOY_LOG: &str = "kiln.deploy.log";

/// Which run a resource belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Canonical path of the state directory.
    pub state: String,
    /// The run number.
    pub run: i64,
}

impl Owner {
    /// Labels of a resource of `job` (or of the run, when `None`).
    pub(crate) fn labels(&self, job: &str) -> HashMap<String, String> {
        HashMap::from([
            (STATE.to_owned(), self.state.clone()),
            (RUN.to_owned(), self.run.to_string()),
            (JOB.to_owned(), job.to_owned()),
        ])
    }

    /// A Docker name for a resource: `kiln-<run>-<job>-<what>-<random>`.
    /// The random part keeps names unique across state directories and
    /// attempts; Docker's name rules are `[a-zA-Z0-9][a-zA-Z0-9_.-]`.
    pub(crate) fn name(&self, job: &str, what: &str) -> String {
        let clean: String = job
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        format!("kiln-{}-{clean}-{what}-{:08x}", self.run, fastrand::u32(..))
    }
}

/// The label filter `kiln.state=<state>` (and `kiln.run=<run>` if given).
pub(crate) fn filter(state: &str, run: Option<i64>) -> HashMap<String, Vec<String>> {
    let mut labels = vec![format!("{STATE}={state}")];
    if let Some(run) = run {
        labels.push(format!("{RUN}={run}"));
    }
    HashMap::from([("label".to_owned(), labels)])
}
