//! Plugin steps (`uses:`): the seam between the engine and a plugin host.
//!
//! The engine renders `with:` inputs, picks the granted env and secrets,
//! enforces deadlines and cancellation through [`StepControl`], masks what
//! the plugin writes and turns returned outputs into step outputs. The host
//! (kiln-wasm) loads and runs the component; the engine never sees wasmtime.

use std::path::PathBuf;
use std::time::Instant;

use kiln_pipeline::Permissions;

use crate::event::RunId;
use crate::executor::{BoxFuture, OutputSender, StepControl};

/// One `uses:` step, fully rendered.
#[derive(Debug, Clone)]
pub struct ActionRequest {
    /// The reference exactly as written in `uses:`.
    pub reference: String,
    /// Job name, e.g. `test (shard=1)`.
    pub job: String,
    /// Step index in the job.
    pub step: usize,
    /// The step's display name.
    pub step_name: String,
    /// The run's id.
    pub run_id: RunId,
    /// `with:` inputs after expression evaluation, in the order written.
    /// Defaults from the plugin's metadata are the host's to apply.
    pub inputs: Vec<(String, String)>,
    /// What the pipeline grants the plugin.
    pub permissions: Permissions,
    /// The pipeline's workspace on the host.
    pub workspace: PathBuf,
    /// Only the variables named in `permissions.env` that are set.
    pub env: Vec<(String, String)>,
    /// Only the secrets named in `permissions.secrets` that are set.
    pub secrets: Vec<(String, String)>,
    /// When the step must be over (step timeout or job deadline). The engine
    /// also cancels [`StepControl::stop`] then; a host may use this to set
    /// its own interrupt.
    pub deadline: Option<Instant>,
}

/// How a plugin step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionExit {
    /// The plugin returned these outputs.
    Success(Vec<(String, String)>),
    /// The plugin returned an error, trapped, or broke a limit; the message
    /// says which, for the user.
    Failed(String),
    /// The plugin could not be run at all (not loaded, host failure).
    Infrastructure(String),
}

/// A host for plugin steps. Like [`crate::Executor`], a host must leave
/// nothing running when the future resolves, and must stop the guest soon
/// after `control.stop` or `control.kill` is cancelled.
pub trait ActionExecutor: Send + Sync + std::fmt::Debug {
    /// Runs one plugin step, streaming its output into `output`.
    fn run_action(
        &self,
        request: ActionRequest,
        output: OutputSender,
        control: StepControl,
    ) -> BoxFuture<'static, ActionExit>;
}
