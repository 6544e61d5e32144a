//! The executor lifecycle: how a step's work is carried out.
//!
//! The engine owns time (deadlines), cancellation and masking; an executor
//! only starts a unit of work, streams its raw output and stops it when told.
//! Every backend (host processes here; containers and WASM components in
//! their own crates) gets the same guarantees from the engine this way.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use kiln_pipeline::Job;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::event::Stream;

/// A boxed, sendable future, so [`Executor`] stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Raw output from a running step. The engine splits it into lines and
/// masks secrets before anything leaves the engine.
pub type OutputSender = mpsc::UnboundedSender<(Stream, Vec<u8>)>;

/// One script step, fully rendered: no expressions left in it.
#[derive(Debug, Clone)]
pub struct StepRequest {
    /// Job name (for diagnostics and labels).
    pub job: String,
    /// Step index in the job.
    pub step: usize,
    /// The script text (secrets may be substituted into it: never log it).
    pub script: String,
    /// Shell command line; the script's path is appended.
    pub shell: Vec<String>,
    /// Working directory.
    pub workdir: PathBuf,
    /// The complete environment of the step (nothing else is inherited).
    pub env: Vec<(String, String)>,
    /// Where the script file is written (a private per-run directory).
    pub script_path: PathBuf,
}

/// How the engine tells a running step to stop.
#[derive(Debug, Clone)]
pub struct StepControl {
    /// Graceful stop: SIGTERM (or the backend's equivalent), then after
    /// [`StepControl::grace`] a hard kill.
    pub stop: CancellationToken,
    /// Hard kill at once (a second Ctrl-C).
    pub kill: CancellationToken,
    /// Time between the graceful stop and the hard kill.
    pub grace: Duration,
}

/// How a step's process ended, as the executor saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepExit {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal (including our own stop).
    Signaled(i32),
    /// The executor could not run the step at all.
    Infrastructure(String),
}

/// A backend that runs steps. Implementations must leave nothing behind
/// when [`Executor::run_step`] returns: no process, container or temp file
/// that outlives the step.
pub trait Executor: Send + Sync {
    /// Called once per job attempt before its first step (create a
    /// container, a network …). The default does nothing.
    fn prepare<'a>(&'a self, _job: &'a Job) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    /// Runs one script step to completion, streaming output into `output`
    /// and honouring `control`. Dropping `output` signals end of output.
    fn run_step(
        &self,
        request: StepRequest,
        output: OutputSender,
        control: StepControl,
    ) -> BoxFuture<'static, StepExit>;

    /// Called once per job attempt after its last step, whatever happened.
    /// The default does nothing.
    fn cleanup<'a>(&'a self, _job: &'a Job) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}
