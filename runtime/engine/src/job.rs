//! One job: its attempts, retries and the backoff between them (the steps of an attempt are `step.rs`'s).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kiln_pipeline::{Job, JobId, RetryOn};

use crate::backoff;
use crate::event::{Event, JobResult};
use crate::run::Shared;
use crate::step::{FailureKind, StepRunner};

/// How a finished job is reported.
#[derive(Debug)]
pub(crate) struct JobOutcome {
    pub result: JobResult,
    pub attempts: u32,
    pub duration: Duration,
    pub reason: Option<String>,
    pub outputs: Vec<(String, String)>,
}

struct Attempt {
    failure: Option<(FailureKind, String)>,
    outputs: Vec<(String, String)>,
}

/// Runs `job` with retries until it succeeds, fails for good, or the run
/// stops.
pub(crate) async fn run(shared: Arc<Shared>, id: JobId) -> JobOutcome {
    let job = &shared.plan.jobs[id.0];
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        shared.emit(Event::JobStarted {
            job: id,
            name: job.name.clone(),
            attempt,
        });
        let outcome = run_attempt(&shared, job, attempt).await;
        let Some((kind, reason)) = outcome.failure else {
            return JobOutcome {
                result: JobResult::Success,
                attempts: attempt,
                duration: started.elapsed(),
                reason: None,
                outputs: outcome.outputs,
            };
        };
        let stopping = shared.stop.is_cancelled();
        if attempt < job.retry.max_attempts && !stopping && retries(&job.retry.on, kind) {
            let delay = backoff::delay(&job.retry, attempt);
            shared.emit(Event::JobRetrying {
                job: id,
                attempt,
                delay,
                reason: reason.clone(),
            });
            tokio::select! {
                _ = tokio::time::sleep(delay) => continue,
                _ = shared.stop.cancelled() => {},
            }
        }
        let result = match kind {
            FailureKind::Timeout => JobResult::TimedOut,
            FailureKind::Cancelled => shared.stop_result(),
            FailureKind::Exit | FailureKind::Infrastructure => JobResult::Failed,
        };
        return JobOutcome {
            result,
            attempts: attempt,
            duration: started.elapsed(),
            reason: Some(reason),
            outputs: outcome.outputs,
        };
    }
}

fn retries(on: &[RetryOn], kind: FailureKind) -> bool {
    on.iter().any(|on| match on {
        RetryOn::Any => kind != FailureKind::Cancelled,
        RetryOn::Timeout => kind == FailureKind::Timeout,
        RetryOn::Infrastructure => kind == FailureKind::Infrastructure,
    })
}

async fn run_attempt(shared: &Arc<Shared>, job: &Job, attempt: u32) -> Attempt {
    let mut runner = StepRunner::new(shared, job, attempt);
    let request = match runner.job_request() {
        Ok(request) => request,
        Err(message) => {
            return Attempt {
                failure: Some((FailureKind::Exit, message)),
                outputs: Vec::new(),
            };
        }
    };
    if let Err(failure) = prepare(shared, &request, runner.deadline()).await {
        // A prepare that failed half-way (network created, container not)
        // leaves things behind that only cleanup removes; the trait promises
        // cleanup "whatever happened".
        shared.executor.cleanup(&request).await;
        return Attempt {
            failure: Some(failure),
            outputs: Vec::new(),
        };
    }
    let failure = runner.run_steps().await;
    shared.executor.cleanup(&request).await;
    let outputs = match failure {
        None => runner.job_outputs(),
        Some(_) => Vec::new(),
    };
    Attempt { failure, outputs }
}

/// Runs the executor's `prepare` under the job's deadline and the run's
/// stop: pulls and service health waits can take minutes, and neither
/// Ctrl-C nor `timeout:` may wait for them. On either, the request's stop
/// token is cancelled and `prepare` is awaited until it returns, so it
/// can account for what it created before `cleanup` runs.
async fn prepare(
    shared: &Arc<Shared>,
    request: &crate::executor::JobRequest<'_>,
    deadline: Option<tokio::time::Instant>,
) -> Result<(), (FailureKind, String)> {
    let mut work = shared.executor.prepare(request);
    let mut stopped: Option<(FailureKind, &str)> = None;
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            _ = crate::step::sleep_until(deadline), if stopped.is_none() => {
                stopped = Some((FailureKind::Timeout, "the job timed out"));
                request.stop.cancel();
            }
            _ = shared.stop.cancelled(), if stopped.is_none() => {
                stopped = Some(if shared.pipeline_timed_out.load(Ordering::SeqCst) {
                    (FailureKind::Timeout, "the pipeline timed out")
                } else {
                    (FailureKind::Cancelled, "the run was cancelled")
                });
                request.stop.cancel();
            }
        }
    };
    match (stopped, result) {
        (Some((kind, why)), _) => Err((
            kind,
            format!(
                "{why} before its containers and services were ready; what was created is removed"
            ),
        )),
        (None, Err(message)) => Err((FailureKind::Infrastructure, message)),
        (None, Ok(())) => Ok(()),
    }
}
