//! The dispatcher and job state machines against a scripted [`Executor`]:
//! no processes, so what the engine asked for is observable exactly.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kiln_pipeline::{LoadOptions, Plan, SourceFile};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod actions;

use crate::RunOptions;
use crate::event::{Event, JobResult, RunResult, StepResult, Stream};
use crate::executor::{
    BoxFuture, Executor, JobRequest, OutputSender, StepControl, StepExit, StepRequest,
};

/// Runs steps by their script text:
/// `ok` exits 0, `exit N` exits N, `infra` cannot run, `hang` runs until
/// stopped, `nap` sleeps 50 ms; and a job whose first step is named
/// `fail-prepare` fails in `prepare` (`hang-prepare`: waits in it until
/// told to stop). Records every call.
#[derive(Default)]
struct Scripted {
    log: Mutex<Vec<String>>,
    /// Steps running now (shared with their futures).
    running: Arc<AtomicUsize>,
    most_running: AtomicUsize,
}

impl Scripted {
    fn log(&self) -> Vec<String> {
        self.log.lock().expect("not poisoned").clone()
    }

    fn record(&self, entry: String) {
        self.log.lock().expect("not poisoned").push(entry);
    }
}

impl Executor for Scripted {
    fn prepare<'a>(&'a self, request: &'a JobRequest<'a>) -> BoxFuture<'a, Result<(), String>> {
        let job = request.job;
        self.record(format!("prepare {}", job.name));
        let fail = job.steps.first().is_some_and(|s| s.name == "fail-prepare");
        let hang = job.steps.first().is_some_and(|s| s.name == "hang-prepare");
        Box::pin(async move {
            if hang {
                // A health wait that never ends, until the engine stops it.
                request.stop.cancelled().await;
                self.record(format!("prepare {} stopped", job.name));
                return Err("stopped".into());
            }
            if fail {
                Err("no network".into())
            } else {
                Ok(())
            }
        })
    }

    fn run_step(
        &self,
        request: StepRequest,
        output: OutputSender,
        control: StepControl,
    ) -> BoxFuture<'static, StepExit> {
        self.record(format!("run {} {}", request.job, request.script.trim()));
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_running.fetch_max(now, Ordering::SeqCst);
        let script = request.script.trim().to_owned();
        let running = self.running.clone();
        Box::pin(async move {
            let exit = match script.as_str() {
                "ok" => StepExit::Exited(0),
                "infra" => StepExit::Infrastructure("engine unreachable".into()),
                "nap" => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    StepExit::Exited(0)
                }
                "hang" => {
                    let _ = output.send((Stream::Stdout, b"hanging\n".to_vec()));
                    tokio::select! {
                        _ = control.stop.cancelled() => StepExit::Signaled(15),
                        _ = control.kill.cancelled() => StepExit::Signaled(9),
                    }
                }
                other => match other.strip_prefix("exit ").and_then(|n| n.parse().ok()) {
                    Some(code) => StepExit::Exited(code),
                    None => StepExit::Infrastructure(format!("unknown script `{other}`")),
                },
            };
            running.fetch_sub(1, Ordering::SeqCst);
            exit
        })
    }

    fn cleanup<'a>(&'a self, request: &'a JobRequest<'a>) -> BoxFuture<'a, ()> {
        let job = request.job;
        self.record(format!("cleanup {}", job.name));
        Box::pin(async {})
    }
}

fn plan(yaml: &str) -> Arc<Plan> {
    let source = SourceFile::new("kiln.yml", yaml);
    match kiln_pipeline::load(&source, &LoadOptions::default()) {
        Ok(loaded) => Arc::new(loaded.plan),
        Err(e) => panic!("test pipeline does not load: {:?}", e.diagnostics),
    }
}

/// Distinct run ids keep parallel tests' temp directories apart.
fn run_id() -> i64 {
    static NEXT: AtomicI64 = AtomicI64::new(1);
    NEXT.fetch_add(1, Ordering::SeqCst) + i64::from(std::process::id()) * 1000
}

struct Finished {
    result: RunResult,
    events: Vec<Event>,
    log: Vec<String>,
    most_running: usize,
}

impl Finished {
    fn job(&self, name: &str) -> (JobResult, u32, Option<String>) {
        self.events
            .iter()
            .find_map(|e| match e {
                Event::JobFinished {
                    name: n,
                    result,
                    attempts,
                    reason,
                    ..
                } if n == name => Some((*result, *attempts, reason.clone())),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no JobFinished for `{name}`: {:?}", self.events))
    }

    fn steps(&self) -> Vec<StepResult> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::StepFinished { result, .. } => Some(*result),
                _ => None,
            })
            .collect()
    }

    fn notes(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Output { line, .. } if line.starts_with("kiln: ") => Some(line.clone()),
                _ => None,
            })
            .collect()
    }
}

async fn run_with(yaml: &str, parallel: usize, cancel_after: Option<Duration>) -> Finished {
    let executor = Arc::new(Scripted::default());
    let mut options = RunOptions::new(run_id(), std::env::temp_dir());
    options.temp_root = Some(std::env::temp_dir());
    options.max_parallel = parallel;
    options.grace = Duration::from_millis(100);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    if let Some(after) = cancel_after {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            cancel.cancel();
        });
    }
    let result = crate::run(
        plan(yaml),
        options,
        executor.clone(),
        tx,
        cancel,
        CancellationToken::new(),
    )
    .await;
    let mut events = Vec::new();
    while let Ok(event) = rx.try_recv() {
        events.push(event);
    }
    Finished {
        result,
        events,
        log: executor.log(),
        most_running: executor.most_running.load(Ordering::SeqCst),
    }
}

async fn run(yaml: &str) -> Finished {
    run_with(yaml, 4, None).await
}

#[tokio::test]
async fn a_step_after_the_job_deadline_is_never_started() {
    let done = run(
        "jobs:\n  a:\n    timeout: 100ms\n    steps:\n      - run: hang\n      - { if: always(), run: ok }\n",
    )
    .await;
    assert_eq!(done.log, ["prepare a", "run a hang", "cleanup a"]);
    assert_eq!(done.steps(), [StepResult::TimedOut, StepResult::TimedOut]);
    assert_eq!(
        done.notes(),
        [
            "kiln: step timed out; its processes were stopped",
            "kiln: step not started: the job had timed out",
        ]
    );
    assert_eq!(done.result, RunResult::Failed);
}

#[tokio::test]
async fn a_step_reached_after_cancel_is_never_started() {
    let done = run_with(
        "jobs:\n  a:\n    steps:\n      - run: hang\n      - { if: cancelled(), run: ok }\n",
        4,
        Some(Duration::from_millis(50)),
    )
    .await;
    assert_eq!(done.log, ["prepare a", "run a hang", "cleanup a"]);
    assert_eq!(done.steps(), [StepResult::Cancelled, StepResult::Cancelled]);
    assert_eq!(
        done.notes()[1],
        "kiln: step not started: the run was cancelled"
    );
    assert_eq!(done.job("a").0, JobResult::Cancelled);
    assert_eq!(done.result, RunResult::Cancelled);
}

#[tokio::test]
async fn infrastructure_failures_retry_only_when_named() {
    let done = run(
        "jobs:\n  a: { retry: { max: 2, backoff: 1ms, on: [infrastructure] }, steps: [run: infra] }\n  b: { retry: { max: 2, backoff: 1ms, on: [timeout] }, steps: [run: infra] }\n",
    )
    .await;
    let (result, attempts, reason) = done.job("a");
    assert_eq!((result, attempts), (JobResult::Failed, 3));
    assert_eq!(reason.as_deref(), Some("step 1 `infra` could not run"));
    assert_eq!(done.job("b").1, 1);
}

#[tokio::test]
async fn any_does_not_retry_a_cancelled_attempt() {
    let done = run_with(
        "jobs:\n  a: { retry: { max: 5, backoff: 1ms, on: [any] }, steps: [run: hang] }\n",
        4,
        Some(Duration::from_millis(50)),
    )
    .await;
    assert_eq!(done.job("a").0, JobResult::Cancelled);
    assert_eq!(done.job("a").1, 1);
}

#[tokio::test]
async fn cleanup_runs_even_when_prepare_fails() {
    let done = run(
        "jobs:\n  a:\n    retry: { max: 1, backoff: 1ms, on: [infrastructure] }\n    steps: [{ name: fail-prepare, run: ok }]\n",
    )
    .await;
    // Each attempt's prepare may have created something (a network, a
    // container) before it failed; cleanup is what removes it.
    assert_eq!(
        done.log,
        ["prepare a", "cleanup a", "prepare a", "cleanup a"]
    );
    let (result, attempts, reason) = done.job("a");
    assert_eq!((result, attempts), (JobResult::Failed, 2));
    assert_eq!(reason.as_deref(), Some("no network"));
}

#[tokio::test]
async fn the_job_timeout_stops_prepare_and_cleanup_still_runs() {
    let done =
        run("jobs:\n  a:\n    timeout: 100ms\n    steps: [{ name: hang-prepare, run: ok }]\n")
            .await;
    assert_eq!(done.log, ["prepare a", "prepare a stopped", "cleanup a"]);
    let (result, attempts, reason) = done.job("a");
    assert_eq!((result, attempts), (JobResult::TimedOut, 1));
    assert_eq!(
        reason.as_deref(),
        Some(
            "the job timed out before its containers and services were ready; what was created is removed"
        )
    );
}

#[tokio::test]
async fn max_parallel_bounds_running_steps() {
    let jobs: String = (0..6)
        .map(|i| format!("  j{i}: {{ steps: [run: nap] }}\n"))
        .collect();
    let yaml = format!("jobs:\n{jobs}");
    assert_eq!(run_with(&yaml, 2, None).await.most_running, 2);
    assert_eq!(run_with(&yaml, 1, None).await.most_running, 1);
    assert_eq!(run_with(&yaml, 6, None).await.most_running, 6);
}

#[tokio::test]
async fn a_failed_need_fails_failure_but_not_a_continue_on_error_one() {
    let done = run("jobs:
  bad: { steps: [run: exit 1] }
  soft: { continue-on-error: true, steps: [run: exit 1] }
  on-bad: { needs: [bad], if: failure(), steps: [run: ok] }
  on-soft: { needs: [soft], if: failure(), steps: [run: ok] }
  after-soft: { needs: [soft], steps: [run: ok] }
")
    .await;
    assert_eq!(done.job("on-bad").0, JobResult::Success);
    let (result, _, reason) = done.job("on-soft");
    assert_eq!(result, JobResult::Skipped);
    assert_eq!(reason.as_deref(), Some("`if: failure()` was false"));
    assert_eq!(done.job("after-soft").0, JobResult::Success);
    assert_eq!(done.result, RunResult::Failed);
}

/// Records where the engine placed each unit of work.
#[derive(Default)]
struct Placements(Mutex<Vec<String>>);

impl Executor for Placements {
    fn prepare<'a>(&'a self, request: &'a JobRequest<'a>) -> BoxFuture<'a, Result<(), String>> {
        let image = request.container.as_ref().map(|c| c.image.clone());
        let services: Vec<String> = request
            .services
            .iter()
            .map(|s| format!("{}={}", s.name, s.image))
            .collect();
        self.0.lock().expect("not poisoned").push(format!(
            "prepare {} {image:?} {services:?}",
            request.job.name
        ));
        Box::pin(async { Ok(()) })
    }

    fn run_step(
        &self,
        request: StepRequest,
        _output: OutputSender,
        _control: StepControl,
    ) -> BoxFuture<'static, StepExit> {
        let placement = match &request.placement {
            crate::Placement::Host => "host".to_owned(),
            crate::Placement::JobContainer => "job-container".to_owned(),
            crate::Placement::Container(c) => format!("own {}", c.image),
        };
        let inherits_host_env = request.env.get("PATH").is_some();
        self.0.lock().expect("not poisoned").push(format!(
            "run {} {placement} host-env={inherits_host_env}",
            request.job
        ));
        Box::pin(async { StepExit::Exited(0) })
    }
}

async fn run_routed(yaml: &str, routed: crate::Routed) -> RunResult {
    let mut options = RunOptions::new(run_id(), std::env::temp_dir());
    options.temp_root = Some(std::env::temp_dir());
    options.max_parallel = 1;
    let (tx, _rx) = mpsc::unbounded_channel();
    crate::run(
        plan(yaml),
        options,
        Arc::new(routed),
        tx,
        CancellationToken::new(),
        CancellationToken::new(),
    )
    .await
}

#[tokio::test]
async fn routed_sends_container_work_to_the_container_backend_with_rendered_images() {
    let host = Arc::new(Placements::default());
    let containers = Arc::new(Placements::default());
    let routed = crate::Routed::new(host.clone()).with_containers(containers.clone());
    let yaml = "
jobs:
  boxed:
    strategy: { matrix: { v: ['1'] } }
    image: alpine:${{ matrix.v }}
    services: { db: { image: 'pg:${{ matrix.v }}' } }
    steps: [run: ok]
  mixed:
    needs: [boxed]
    steps:
      - run: ok
      - { image: busybox, run: ok }
";
    assert_eq!(run_routed(yaml, routed).await, RunResult::Success);
    assert_eq!(
        containers.0.lock().unwrap().clone(),
        vec![
            "prepare boxed (v=1) Some(\"alpine:1\") [\"db=pg:1\"]".to_owned(),
            "run boxed (v=1) job-container host-env=false".to_owned(),
            "run mixed own busybox host-env=false".to_owned(),
        ]
    );
    assert_eq!(
        host.0.lock().unwrap().clone(),
        vec![
            "prepare mixed None []".to_owned(),
            "run mixed host host-env=true".to_owned(),
        ]
    );
}

#[tokio::test]
async fn routed_without_a_container_backend_fails_container_jobs_clearly() {
    let host = Arc::new(Placements::default());
    let yaml =
        "jobs:\n  a: { image: x, steps: [run: ok] }\n  b: { steps: [{ image: x, run: ok }] }\n";
    let mut options = RunOptions::new(run_id(), std::env::temp_dir());
    options.temp_root = Some(std::env::temp_dir());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let result = crate::run(
        plan(yaml),
        options,
        Arc::new(crate::Routed::new(host)),
        tx,
        CancellationToken::new(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(result, RunResult::Failed);
    let mut reasons = Vec::new();
    while let Ok(event) = rx.try_recv() {
        match event {
            Event::JobFinished { name, reason, .. } => reasons.push(format!("{name}: {reason:?}")),
            Event::Output { line, .. } => reasons.push(line),
            _ => {}
        }
    }
    let message = "this build of kiln has no container executor; remove `image:` and `services:` to run on the host";
    assert!(
        reasons.contains(&format!("a: Some({message:?})")),
        "{reasons:?}"
    );
    assert!(reasons.contains(&format!("kiln: {message}")), "{reasons:?}");
}
