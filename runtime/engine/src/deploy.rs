//! How a `deploy:` job's rollout is carried out: through a [`Deployer`]
//! the CLI provides (with kiln-deploy), so this crate never imports the
//! rollout controller, its proxy or its targets.
//!
//! The engine renders the job's templates into a [`DeployRequest`] and
//! drives the rollout like a step: its log lines are masked and streamed,
//! its exit decides the job's result, and a cancelled run asks it to stop
//! (the controller then rolls back).

use std::path::PathBuf;
use std::time::Duration;

use kiln_pipeline::{DeployTarget, ProxyConfig, Readiness};

use crate::event::RunId;
use crate::executor::{BoxFuture, OutputSender, StepControl, StepExit};

/// One rollout, fully rendered: no expressions left in it.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    /// The run this rollout belongs to.
    pub run: RunId,
    /// The job's name.
    pub job: String,
    /// The pipeline's workspace (where `process` instances run).
    pub workspace: PathBuf,
    /// Where instances run.
    pub target: DeployTarget,
    /// Service name.
    pub service: String,
    /// What an instance runs.
    pub run_spec: DeployRunSpec,
    /// The version label as rendered, if given.
    pub version: Option<String>,
    /// Container port (`docker`).
    pub port: Option<u16>,
    /// Instances when fully rolled out.
    pub replicas: u32,
    /// Env of every instance.
    pub env: Vec<(String, String)>,
    /// When an instance counts as up.
    pub readiness: Readiness,
    /// Strategy reference and rendered parameters.
    pub strategy: RenderedPlugin,
    /// Health-check reference and rendered parameters.
    pub health: Option<RenderedPlugin>,
    /// `approval: manual`.
    pub manual_approval: bool,
    /// How long a gate waits before it counts as rejected.
    pub approval_timeout: Duration,
    /// The service's proxy.
    pub proxy: ProxyConfig,
}

/// `command:` or `image:`, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployRunSpec {
    /// A shell command line.
    Command(String),
    /// A container image.
    Image(String),
}

/// A plugin reference with its `with:` rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPlugin {
    /// As written.
    pub uses: String,
    /// Parameters.
    pub with: Vec<(String, String)>,
}

/// Carries out rollouts. Exit `0` means the rollout finished as the
/// strategy decided (promoted); anything else fails the job (rolled back,
/// rejected, or an error, explained in the output).
pub trait Deployer: Send + Sync + std::fmt::Debug {
    /// Runs one rollout to its end, streaming log lines into `output` and
    /// honouring `control` (a stop rolls the rollout back).
    fn deploy(
        &self,
        request: DeployRequest,
        output: OutputSender,
        control: StepControl,
    ) -> BoxFuture<'static, StepExit>;
}
