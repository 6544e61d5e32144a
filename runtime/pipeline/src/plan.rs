//! The validated, expanded pipeline: what the engine runs.
//!
//! Every type here is valid by construction: names are checked, matrices are
//! expanded, `needs` point at existing jobs, the graph has no cycle, and
//! expressions are parsed. Downstream crates never see raw YAML.

use std::collections::BTreeMap;
use std::time::Duration;

use petgraph::graph::DiGraph;

use crate::expr::{Expr, Template};
use crate::source::Span;

/// Index of a job in [`Plan::jobs`] (after matrix expansion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct JobId(pub usize);

/// A pipeline ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `name:` of the pipeline, or the file stem.
    pub name: String,
    /// Pipeline-level env, already `${VAR}`-interpolated; values may still hold
    /// `${{ }}` expressions evaluated at run time.
    pub env: Vec<(String, Template)>,
    /// Whole-run timeout.
    pub timeout: Option<Duration>,
    /// Jobs in declaration order, matrix jobs expanded in place.
    pub jobs: Vec<Job>,
    /// Edge `a → b` means `b` needs `a`. Node weights are [`JobId`]s and node
    /// index `i` is job `i`.
    pub graph: DiGraph<JobId, ()>,
    /// Jobs grouped by depth: level 0 needs nothing, level n needs only
    /// jobs from levels < n.
    pub levels: Vec<Vec<JobId>>,
    /// The longest chain of jobs by step count (unit weights: durations are
    /// unknown before a run).
    pub critical_path: Vec<JobId>,
}

/// One job instance (a matrix job becomes one [`Job`] per combination).
#[derive(Debug, Clone)]
pub struct Job {
    /// This job's index.
    pub id: JobId,
    /// Unique key: the YAML key, plus the matrix values for expanded jobs
    /// (`test (shard=1)`). Used for `--job`, logs and records.
    pub name: String,
    /// The YAML key this job came from (`test`), shared by matrix siblings;
    /// `needs.<key>` refers to it.
    pub key: String,
    /// Human title (`name:` field), defaults to `name`.
    pub title: String,
    /// Jobs that must finish first (all matrix instances of a needed key).
    pub needs: Vec<JobId>,
    /// `if:`; `None` means `success()`.
    pub condition: Option<Expr>,
    /// Job env (overrides pipeline env).
    pub env: Vec<(String, Template)>,
    /// Values of this instance's matrix combination (empty if none).
    pub matrix: BTreeMap<String, serde_json::Value>,
    /// Container image for `run:` steps (container executor, later issue).
    pub image: Option<Template>,
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Job timeout (all attempts of one try of the job's steps).
    pub timeout: Option<Duration>,
    /// How failures of this job are retried.
    pub retry: RetryPolicy,
    /// A failed job with this set counts as success for its dependents.
    pub continue_on_error: bool,
    /// `outputs:` mapping declared on the job; if empty, every key written to
    /// `$KILN_OUTPUT` by any step is an output.
    pub outputs: Vec<(String, Template)>,
    /// Where the job was declared (its key), for run-time errors.
    pub span: Span,
}

/// One step of a job.
#[derive(Debug, Clone)]
pub struct Step {
    /// `id:` (for `steps.<id>.outputs`), if given.
    pub id: Option<String>,
    /// Display name: `name:`, else the first line of the script, else the
    /// `uses:` reference.
    pub name: String,
    /// What the step does.
    pub action: StepAction,
    /// `if:`; `None` means `success()`.
    pub condition: Option<Expr>,
    /// Step env (overrides job env).
    pub env: Vec<(String, Template)>,
    /// Step timeout.
    pub timeout: Option<Duration>,
    /// A failed step with this set does not fail the job.
    pub continue_on_error: bool,
    /// Where the step was declared.
    pub span: Span,
}

/// The kinds of step.
#[derive(Debug, Clone)]
pub enum StepAction {
    /// A shell script (`run:` or a seed `script:` list joined by newlines).
    Run {
        /// The script; `${{ }}` is substituted before it runs, `$VAR` is
        /// left to the shell.
        script: Template,
        /// Shell command line prefix (default `sh -e`); the script file path is
        /// appended.
        shell: Vec<String>,
        /// Directory relative to the workspace.
        working_directory: Option<Template>,
    },
    /// A WASI component (`uses:`), run by the wasm executor.
    Uses {
        /// The reference exactly as written (`./x.wasm`, `kiln/render@1`, …).
        reference: String,
        /// `with:` inputs.
        with: Vec<(String, Template)>,
        /// Capabilities granted to the component.
        permissions: Permissions,
        /// Where the parts were written, for diagnostics about the plugin.
        spans: UsesSpans,
    },
    /// A seed-document step kind that parses but is implemented by a later
    /// milestone (`checkout`, `artifact`, `download_artifact`). The engine
    /// fails such a step with `message` instead of silently skipping it.
    Unsupported {
        /// The step key (`artifact`).
        kind: String,
        /// What the user should know (which feature delivers it).
        message: String,
    },
}

/// Source positions of a `uses:` step, so a plugin host can point at the
/// reference, an input or the grants when the plugin disagrees with them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsesSpans {
    /// The `uses:` value.
    pub reference: Span,
    /// Each `with:` key, in the order written.
    pub with: Vec<(String, Span)>,
    /// The `with:` key itself, if present.
    pub with_key: Option<Span>,
    /// The `permissions:` key, if present.
    pub permissions: Option<Span>,
}

/// Capabilities a pipeline grants a `uses:` step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    /// Workspace access: none, read or write.
    pub fs: FsAccess,
    /// `host:port` pairs the component may connect to.
    pub network: Vec<String>,
    /// Env var names the component may read.
    pub env: Vec<String>,
    /// Secret names the component may read through `host`.
    pub secrets: Vec<String>,
}

/// Workspace access granted to a component.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FsAccess {
    /// No preopen at all.
    None,
    /// Read-only preopen of the workspace (the default).
    #[default]
    Read,
    /// Read-write preopen of the workspace.
    Write,
}

/// Which failures a retry applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RetryOn {
    /// The job hit its (or a step's) timeout.
    Timeout,
    /// kiln could not start the step (spawn failure, container engine error).
    Infrastructure,
    /// Any failure, including a non-zero exit.
    Any,
}

/// How a failed job is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles each time, with jitter.
    pub backoff: Duration,
    /// Upper bound on one delay.
    pub max_backoff: Duration,
    /// Failure kinds that are retried.
    pub on: Vec<RetryOn>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 1,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            on: vec![RetryOn::Any],
        }
    }
}
