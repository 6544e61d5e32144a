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
    /// Container image: every `run:` step of the job runs in one container
    /// of it (one per attempt).
    pub image: Option<Template>,
    /// Isolation, resources and pull policy of the job's containers.
    pub container: crate::container::ContainerOptions,
    /// Sidecars started before the first step, on a network of the job's own.
    pub services: Vec<crate::container::Service>,
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
    /// `artifacts:`: uploaded, in order, after the job succeeds.
    pub artifacts: Vec<ArtifactSpec>,
    /// `download:`: which artifacts of the needed jobs are put into the
    /// workspace before the first step. `None` means all of them.
    pub download: Option<Vec<String>>,
    /// `cache:`: restored before the first step, saved after success when
    /// the key was a miss.
    pub cache: Option<CacheSpec>,
    /// Where the job was declared (its key), for run-time errors.
    pub span: Span,
}

impl Job {
    /// Whether the job may leave artifacts for the jobs that need it: it has
    /// `artifacts:`, an `artifact` step, or a `uses:` step (a plugin may
    /// `put` artifacts). A job that needs only jobs for which this is false
    /// has nothing to download, so the runner need not open the store.
    pub fn may_upload_artifacts(&self) -> bool {
        !self.artifacts.is_empty()
            || self.steps.iter().any(|step| {
                matches!(
                    step.action,
                    StepAction::UploadArtifact { .. } | StepAction::Uses { .. }
                )
            })
    }
}

/// One entry of a job's `artifacts:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactSpec {
    /// The artifact's name (checked by [`crate::artifact::check_name`]).
    pub name: String,
    /// Workspace-relative paths or globs (`*`, `?`, `**`, `!` to exclude),
    /// as written. One literal path uploads that file or directory; globs
    /// or several paths upload the matched files, keeping their paths.
    pub paths: Vec<String>,
}

/// A job's `cache:`.
#[derive(Debug, Clone)]
pub struct CacheSpec {
    /// The exact key (`cargo-${{ hashFiles('Cargo.lock') }}`).
    pub key: Template,
    /// Prefixes tried in order when the key misses; the newest entry whose
    /// key starts with one is restored.
    pub restore_keys: Vec<Template>,
    /// What is cached: paths relative to the workspace, `~/…` or absolute.
    pub paths: Vec<String>,
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
    /// `image:` of the step: it runs in a container of its own.
    pub image: Option<Template>,
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
    /// The seed's `artifact: PATH`: uploads the file or directory at `PATH`
    /// as artifact `name` (derived from the path) when the step runs.
    UploadArtifact {
        /// The artifact name (`dist/` → `dist`).
        name: String,
        /// The workspace-relative path, as written.
        path: String,
    },
    /// The seed's `download_artifact: PATH`: puts the artifact named after
    /// `PATH`, uploaded by a job this one (transitively) needs, back into
    /// the workspace.
    DownloadArtifact {
        /// The artifact name (`dist/` → `dist`).
        name: String,
    },
    /// The rollout of a `deploy:` job (its only step), run by the engine's
    /// `Deployer`.
    Deploy(Box<Deploy>),
    /// A seed-document step kind that parses but is implemented by a later
    /// milestone (`checkout`). The engine
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

/// A `deploy:` job: roll `version` of `service` out to `target`.
///
/// Strings that may hold `${{ }}` expressions are [`Template`]s, rendered by
/// the engine when the job runs; the rest is checked here.
#[derive(Debug, Clone)]
pub struct Deploy {
    /// Where instances run.
    pub target: DeployTarget,
    /// Service name (`[a-z0-9-]`, starts with a letter): keys the rollout
    /// state, the proxy and instance names.
    pub service: String,
    /// What an instance runs.
    pub run: DeployRun,
    /// The version label; `None` for an image means its tag.
    pub version: Option<Template>,
    /// The port the service listens on inside a container (`docker`); a
    /// `process` instance gets its port in `$PORT`.
    pub port: Option<u16>,
    /// Instances of the version when fully rolled out.
    pub replicas: u32,
    /// Env of every instance.
    pub env: Vec<(String, Template)>,
    /// When a started instance counts as up.
    pub readiness: Readiness,
    /// The strategy component and its `with:` parameters.
    pub strategy: PluginUse,
    /// The health-check component, if any (else readiness is the health).
    pub health: Option<PluginUse>,
    /// `approval: manual`: a gate named `promote` before promotion.
    pub manual_approval: bool,
    /// How long an approval gate waits before it counts as rejected.
    pub approval_timeout: Duration,
    /// The service's proxy.
    pub proxy: ProxyConfig,
}

/// `target:` of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployTarget {
    /// Local processes on loopback ports.
    Process,
    /// Docker containers.
    Docker,
}

/// `command:` or `image:`.
#[derive(Debug, Clone)]
pub enum DeployRun {
    /// A shell command line (`sh -c`), for the `process` target.
    Command(Template),
    /// A container image, for the `docker` target.
    Image(Template),
}

/// `readiness: { path, timeout }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// An HTTP path that must answer below 500; `None` means a TCP connect.
    pub path: Option<String>,
    /// How long an instance may take to become ready.
    pub timeout: Duration,
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            path: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// `{ uses: REF, with: {…} }` of a strategy or health check.
#[derive(Debug, Clone)]
pub struct PluginUse {
    /// The reference as written (`kiln/canary@1`, `./x.wasm`, …).
    pub uses: String,
    /// `with:` parameters.
    pub with: Vec<(String, Template)>,
    /// Where the reference and the parameters are written (`permissions`
    /// is always `None`: the host grants these components what their role
    /// needs, nothing the pipeline chooses).
    pub spans: UsesSpans,
}

/// `proxy: { listen, sticky }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Loopback address the proxy listens on.
    pub listen: std::net::SocketAddr,
    /// Sticky sessions, if any.
    pub sticky: Option<Sticky>,
}

/// How a client keeps landing on the same version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sticky {
    /// Hash of this cookie's value (the proxy sets it when absent).
    Cookie(String),
    /// Hash of this request header's value.
    Header(String),
}
