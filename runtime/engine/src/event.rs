//! The one event stream: everything that happens in a run, as data.
//!
//! Reporters (terminal, `--json`), log files and run records all consume
//! these; nothing in the engine prints. Output lines are masked before they
//! become events, so no consumer can leak a secret.

use std::time::{Duration, SystemTime};

use kiln_pipeline::JobId;
use serde::Serialize;

/// Identifies a run (the run record's id).
pub type RunId = i64;

/// Where the engine sends its events, in the order things happened.
///
/// Called on the engine's thread, so it must not block for long: queue the
/// event for another thread (the CLI's consumer records and shows it). A
/// tokio channel is one, for tests and embedders; the CLI hands events
/// straight to its consumer thread, without a task to forward them.
pub trait EventSink: Send + Sync {
    /// Takes one event. A sink nobody listens to any more drops it: the
    /// run still ends cleanly.
    fn emit(&self, event: Event);
}

impl EventSink for tokio::sync::mpsc::UnboundedSender<Event> {
    fn emit(&self, event: Event) {
        // A gone receiver means nobody listens any more.
        let _ = self.send(event);
    }
}

/// Something that happened in a run. Serialises as one JSON object with a
/// `"type"` tag (the `--json` format, documented in docs/events.md).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The run began.
    RunStarted {
        /// Run id.
        run: RunId,
        /// Pipeline name.
        pipeline: String,
        /// Every job that will be considered, in plan order.
        jobs: Vec<JobInfo>,
        /// Wall-clock start.
        #[serde(with = "unix_millis")]
        at: SystemTime,
    },
    /// A job attempt started (its dependencies are done, a slot is free).
    JobStarted {
        /// Which job.
        job: JobId,
        /// Its name.
        name: String,
        /// 1-based attempt number.
        attempt: u32,
    },
    /// A step started.
    StepStarted {
        /// Job.
        job: JobId,
        /// Index in the job's steps.
        step: usize,
        /// Display name.
        name: String,
        /// Job attempt this step belongs to.
        attempt: u32,
    },
    /// One line of step output, already masked, without the trailing newline.
    Output {
        /// Job.
        job: JobId,
        /// Step index.
        step: usize,
        /// stdout or stderr.
        stream: Stream,
        /// The masked text.
        line: String,
    },
    /// A step ended.
    StepFinished {
        /// Job.
        job: JobId,
        /// Step index.
        step: usize,
        /// How it ended.
        result: StepResult,
        /// Exit code when the process exited normally.
        exit_code: Option<i32>,
        /// Wall time.
        #[serde(with = "millis")]
        duration: Duration,
    },
    /// A job attempt failed and will run again after `delay`.
    JobRetrying {
        /// Job.
        job: JobId,
        /// The attempt that failed.
        attempt: u32,
        /// Backoff before the next attempt.
        #[serde(with = "millis")]
        delay: Duration,
        /// Why the attempt failed.
        reason: String,
    },
    /// An artifact or cache moved between the store and a job's workspace
    /// (see [`crate::artifacts`]).
    Transfer {
        /// Job.
        job: JobId,
        /// What moved.
        #[serde(flatten)]
        transfer: crate::artifacts::Transfer,
    },
    /// A job reached a final state (including SKIPPED without ever starting).
    JobFinished {
        /// Job.
        job: JobId,
        /// Its name.
        name: String,
        /// Final result.
        result: JobResult,
        /// Attempts made (0 if never started).
        attempts: u32,
        /// Wall time over all attempts.
        #[serde(with = "millis")]
        duration: Duration,
        /// Why, for anything but success (`needs `build`, which failed`).
        reason: Option<String>,
        /// Outputs the job produced.
        outputs: Vec<(String, String)>,
    },
    /// The run ended.
    RunFinished {
        /// Run id.
        run: RunId,
        /// Overall result.
        result: RunResult,
        /// Wall time.
        #[serde(with = "millis")]
        duration: Duration,
    },
}

/// Static facts about a job, sent once at run start.
#[derive(Debug, Clone, Serialize)]
pub struct JobInfo {
    /// Job id.
    pub id: JobId,
    /// Job name.
    pub name: String,
    /// Step display names.
    pub steps: Vec<String>,
    /// Ids of needed jobs.
    pub needs: Vec<JobId>,
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepResult {
    /// Exit 0.
    Success,
    /// Non-zero exit (or a failed action).
    Failed,
    /// Failed, but `continue-on-error` let the job go on.
    FailedIgnored,
    /// `if:` was false, or an earlier step failed.
    Skipped,
    /// Hit the step or job timeout.
    TimedOut,
    /// The run was cancelled while the step ran.
    Cancelled,
    /// kiln could not start it (spawn error, unsupported step kind).
    InfrastructureError,
}

/// A job's final state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobResult {
    /// All steps succeeded (or failed with continue-on-error).
    Success,
    /// A step failed.
    Failed,
    /// Never ran: `if:` false, or a needed job did not succeed.
    Skipped,
    /// Cancelled (Ctrl-C or pipeline timeout).
    Cancelled,
    /// Hit the job timeout.
    TimedOut,
}

/// The whole run's final state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunResult {
    /// Every job succeeded or was skipped by its own `if:`.
    Success,
    /// Some job failed or timed out.
    Failed,
    /// Cancelled by the user or the pipeline timeout.
    Cancelled,
}

mod millis {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

mod unix_millis {
    use std::time::{SystemTime, UNIX_EPOCH};
    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let ms = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        s.serialize_u64(ms)
    }
}
