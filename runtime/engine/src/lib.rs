//! kiln's engine: runs a [`kiln_pipeline::Plan`].
//!
//! Owns the scheduler (ready queue by remaining-dependency count, bounded
//! concurrency), job and step state machines, retries, timeouts,
//! cancellation, secret masking and the [`Event`] stream. Executors plug in
//! through the [`Executor`] trait; this crate never imports wasmtime or
//! bollard, and never prints.
//!
//! Cancellation: when the run is cancelled (or the pipeline timeout fires),
//! running steps get SIGTERM, then SIGKILL after the grace period; jobs that
//! had not started end as `cancelled` — including `if: always()` jobs, so a
//! Ctrl-C really stops the run.
#![warn(missing_docs)]

pub mod action;
pub mod artifacts;
mod backoff;
mod context;
pub mod deploy;
pub mod event;
pub mod executor;
mod job;
mod lines;
pub mod mask;
pub mod outputs;
pub mod process;
mod run;
mod step;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use action::{ActionExecutor, ActionExit, ActionRequest};
pub use artifacts::ArtifactStore;
pub use deploy::{DeployRequest, Deployer};
pub use event::{Event, EventSink, JobResult, RunId, RunResult, StepResult, Stream};
pub use executor::{
    BoxFuture, ContainerRequest, Env, Executor, JobRequest, OutputSender, Placement, Routed,
    ServiceRequest, StepControl, StepExit, StepRequest,
};
pub use process::ProcessExecutor;

/// Everything a run needs besides the plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run record's id (used in env and temp names).
    pub run_id: RunId,
    /// Directory steps run in (`KILN_WORKSPACE`).
    pub workspace: PathBuf,
    /// Jobs running at once (at least 1).
    pub max_parallel: usize,
    /// Secret values by name: injected only into steps that reference them,
    /// masked everywhere.
    pub secrets: BTreeMap<String, String>,
    /// `--var` values: the `vars` context.
    pub vars: BTreeMap<String, String>,
    /// SIGTERM → SIGKILL grace when a step is stopped.
    pub grace: Duration,
    /// Where the run's private temp directory goes (default: the system's).
    pub temp_root: Option<PathBuf>,
    /// Where `artifacts:`, `download:` and `cache:` go. Without one, a job
    /// that uses them fails with a reason saying so.
    pub artifacts: Option<std::sync::Arc<dyn ArtifactStore>>,
    /// Carries out `deploy:` jobs; without one they fail with a message.
    pub deployer: Option<std::sync::Arc<dyn Deployer>>,
    /// Runs `uses:` steps; without one they fail with a clear message.
    pub actions: Option<Arc<dyn ActionExecutor>>,
    /// The environment every host step and plugin starts from, before the
    /// pipeline's `env:` is applied. A caller that takes secrets from the
    /// environment must leave them out here: a secret reaches only the steps
    /// that reference it.
    pub system_env: Vec<(String, String)>,
}

impl RunOptions {
    /// Defaults for `workspace`: parallelism = cores, 5 s grace, and this
    /// process's environment (variables whose name or value is not UTF-8
    /// are left out) as the steps' base environment.
    pub fn new(run_id: RunId, workspace: PathBuf) -> Self {
        Self {
            run_id,
            workspace,
            max_parallel: std::thread::available_parallelism().map_or(1, |n| n.get()),
            secrets: BTreeMap::new(),
            vars: BTreeMap::new(),
            grace: Duration::from_secs(5),
            temp_root: None,
            artifacts: None,
            deployer: None,
            actions: None,
            system_env: process_env(),
        }
    }
}

pub use run::run;

/// This process's environment, leaving out variables whose name or value
/// is not UTF-8 (steps could not be given them faithfully anyway).
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}
