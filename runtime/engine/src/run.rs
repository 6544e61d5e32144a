//! The dispatcher: one task owns the run's state and decides what runs next.
//!
//! Jobs become ready when their remaining-dependency count reaches zero; at
//! most `max_parallel` run at once. Each running job is a task that reports
//! its outcome back; only this task changes run state or emits
//! `JobFinished`, so the event order is the order of decisions.

use std::collections::{HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use kiln_pipeline::expr::Context;
use kiln_pipeline::{JobId, Plan};
use rustix::fs::{Mode, OFlags, RawDir};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::RunOptions;
use crate::context::{self, Finished};
use crate::event::{Event, EventSink, JobInfo, JobResult, RunResult};
use crate::executor::Executor;
use crate::job::{self, JobOutcome};
use crate::mask::Masker;

/// What every job task shares.
pub(crate) struct Shared {
    pub plan: Arc<Plan>,
    pub options: RunOptions,
    pub executor: Arc<dyn Executor>,
    pub masker: Masker,
    events: Box<dyn EventSink>,
    /// Stops every running step gracefully (user cancel or pipeline timeout).
    pub stop: CancellationToken,
    /// Kills every running step at once.
    pub kill: CancellationToken,
    /// Set when `stop` fired because of the pipeline timeout.
    pub pipeline_timed_out: AtomicBool,
    /// Private directory for scripts and output files, removed at the end.
    pub temp: PathBuf,
    /// `temp`, open for listing; opened on first use.
    temp_listing: Mutex<Option<OwnedFd>>,
    /// The base of every host step's env ([`RunOptions::system_env`]).
    pub system_env: Arc<[(String, String)]>,
    /// How each job ended, by plan index; set once, by the dispatcher.
    /// Shared so a job task builds its `needs` context only if an
    /// expression reads it: a job's needs are all set before it starts and
    /// never change.
    pub finished: Box<[OnceLock<Finished>]>,
}

impl Shared {
    pub(crate) fn emit(&self, event: Event) {
        self.events.emit(event);
    }

    /// A secret by name: exact, else case-insensitive (GitHub's names are).
    pub(crate) fn secret(&self, name: &str) -> Option<String> {
        let secrets = &self.options.secrets;
        secrets.get(name).cloned().or_else(|| {
            secrets
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        })
    }

    /// Whether the run's temp directory holds a file named `name`, by
    /// listing it; `true` when it cannot tell. Most steps write no
    /// `$KILN_OUTPUT`, and looking that file up by path failed slowly: a
    /// path walk and a dentry made and freed, a twentieth of the engine
    /// thread's time per no-op step. The directory holds only the files of
    /// steps now running, so its listing is short.
    pub(crate) fn temp_holds(&self, name: &str) -> bool {
        let mut listing = self.temp_listing.lock().unwrap_or_else(|e| e.into_inner());
        if listing.is_none() {
            *listing = open_for_listing(&self.temp).ok();
        }
        match listing.as_ref() {
            Some(dir) => lists(dir, name).unwrap_or(true),
            None => true,
        }
    }

    /// The result of a job stopped by the run's stop token.
    pub(crate) fn stop_result(&self) -> JobResult {
        if self.pipeline_timed_out.load(Ordering::SeqCst) {
            JobResult::TimedOut
        } else {
            JobResult::Cancelled
        }
    }
}

/// Runs `plan` to the end and returns its result.
///
/// Emits [`Event::RunStarted`] first and [`Event::RunFinished`] last on
/// `events`. `cancel` stops the run gracefully (running steps get SIGTERM,
/// then SIGKILL after [`RunOptions::grace`]); `kill` kills running steps at
/// once. Never panics on user input and never leaves a step's process
/// behind.
pub async fn run(
    plan: Arc<Plan>,
    mut options: RunOptions,
    executor: Arc<dyn Executor>,
    events: impl EventSink + 'static,
    cancel: CancellationToken,
    kill: CancellationToken,
) -> RunResult {
    let started = Instant::now();
    let temp = options
        .temp_root
        .clone()
        .unwrap_or_else(default_temp_root)
        .join(format!("kiln-{}-{}", std::process::id(), options.run_id));
    let run_id = options.run_id;
    let system_env = std::mem::take(&mut options.system_env).into();
    let shared = Arc::new(Shared {
        masker: Masker::new(options.secrets.values()),
        plan: plan.clone(),
        options,
        executor,
        events: Box::new(events),
        stop: CancellationToken::new(),
        kill,
        pipeline_timed_out: AtomicBool::new(false),
        temp,
        temp_listing: Mutex::new(None),
        system_env,
        finished: plan.jobs.iter().map(|_| OnceLock::new()).collect(),
    });
    shared.emit(Event::RunStarted {
        run: run_id,
        pipeline: plan.name.clone(),
        jobs: plan
            .jobs
            .iter()
            .map(|job| JobInfo {
                id: job.id,
                name: job.name.clone(),
                steps: job.steps.iter().map(|s| s.name.clone()).collect(),
                needs: job.needs.clone(),
            })
            .collect(),
        at: SystemTime::now(),
    });
    let result = match create_private_dir(&shared.temp) {
        Ok(()) => Dispatcher::new(shared.clone()).run(cancel).await,
        Err(e) => {
            let reason = format!(
                "cannot create the run's temp directory `{}`: {e}",
                shared.temp.display()
            );
            for job in &plan.jobs {
                finish_unstarted(&shared, job.id, JobResult::Cancelled, &reason);
            }
            RunResult::Failed
        }
    };
    let _ = std::fs::remove_dir_all(&shared.temp);
    shared.emit(Event::RunFinished {
        run: run_id,
        result,
        duration: started.elapsed(),
    });
    result
}

fn open_for_listing(dir: &std::path::Path) -> rustix::io::Result<OwnedFd> {
    rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Whether the directory open as `dir` has an entry named `name`, read
/// from its start (the same fd serves every listing).
fn lists(dir: &OwnedFd, name: &str) -> rustix::io::Result<bool> {
    rustix::fs::seek(dir, rustix::fs::SeekFrom::Start(0))?;
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
    let mut entries = RawDir::new(dir, &mut buf);
    while let Some(entry) = entries.next() {
        if entry?.file_name().to_bytes() == name.as_bytes() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Scripts may hold secrets, so they go to memory-backed storage when the
/// system has it (`$XDG_RUNTIME_DIR`, else `/dev/shm`): a secret never
/// touches a disk, and creating a file per step costs far less there.
fn default_temp_root() -> PathBuf {
    let candidates = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/dev/shm")]);
    for dir in candidates {
        let writable = rustix::fs::access(&dir, rustix::fs::Access::WRITE_OK).is_ok();
        if dir.is_dir() && writable {
            return dir;
        }
    }
    std::env::temp_dir()
}

fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

fn finish_unstarted(shared: &Shared, id: JobId, result: JobResult, reason: &str) {
    shared.emit(Event::JobFinished {
        job: id,
        name: shared.plan.jobs[id.0].name.clone(),
        result,
        attempts: 0,
        duration: Duration::ZERO,
        reason: Some(reason.to_owned()),
        outputs: Vec::new(),
    });
}

/// Whether a job runs, and if not, why.
enum Decision {
    Run,
    Skip(String),
    Fail(String),
}

struct Dispatcher {
    shared: Arc<Shared>,
    remaining: Vec<usize>,
    dependents: Vec<Vec<JobId>>,
    /// A job failed (not counting `continue-on-error`) here or upstream:
    /// what `failure()` reports for its dependents.
    upstream_failed: Vec<bool>,
    ready: VecDeque<JobId>,
    running: JoinSet<(JobId, JobOutcome)>,
    task_jobs: HashMap<tokio::task::Id, JobId>,
    cancelled_by_user: bool,
}

impl Dispatcher {
    fn new(shared: Arc<Shared>) -> Self {
        let jobs = &shared.plan.jobs;
        let mut dependents = vec![Vec::new(); jobs.len()];
        for job in jobs {
            for need in &job.needs {
                dependents[need.0].push(job.id);
            }
        }
        let remaining: Vec<usize> = jobs.iter().map(|j| j.needs.len()).collect();
        let ready = jobs
            .iter()
            .filter(|j| j.needs.is_empty())
            .map(|j| j.id)
            .collect();
        Self {
            remaining,
            dependents,
            upstream_failed: vec![false; jobs.len()],
            ready,
            running: JoinSet::new(),
            task_jobs: HashMap::new(),
            cancelled_by_user: false,
            shared,
        }
    }

    async fn run(mut self, cancel: CancellationToken) -> RunResult {
        let timeout = self.shared.plan.timeout;
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let parallel = self.shared.options.max_parallel.max(1);
        loop {
            while self.running.len() < parallel {
                let Some(id) = self.ready.pop_front() else {
                    break;
                };
                self.start(id);
            }
            if self.running.is_empty() && self.ready.is_empty() {
                break;
            }
            tokio::select! {
                Some(joined) = self.running.join_next_with_id() => self.joined(joined),
                _ = cancel.cancelled(), if !self.shared.stop.is_cancelled() => {
                    self.cancelled_by_user = true;
                    self.shared.stop.cancel();
                }
                _ = sleep_until(deadline), if !self.shared.stop.is_cancelled() => {
                    self.shared.pipeline_timed_out.store(true, Ordering::SeqCst);
                    self.shared.stop.cancel();
                }
            }
        }
        self.result()
    }

    fn start(&mut self, id: JobId) {
        if self.shared.stop.is_cancelled() {
            let (result, reason) = if self.shared.pipeline_timed_out.load(Ordering::SeqCst) {
                (
                    JobResult::Cancelled,
                    "the pipeline timed out before it started",
                )
            } else {
                (
                    JobResult::Cancelled,
                    "the run was cancelled before it started",
                )
            };
            return self.finish(
                id,
                result,
                0,
                Duration::ZERO,
                Some(reason.into()),
                Vec::new(),
            );
        }
        match self.decide(id) {
            Decision::Run => {
                let handle = self.running.spawn(run_job(self.shared.clone(), id));
                self.task_jobs.insert(handle.id(), id);
            }
            Decision::Skip(reason) => self.finish(
                id,
                JobResult::Skipped,
                0,
                Duration::ZERO,
                Some(reason),
                Vec::new(),
            ),
            Decision::Fail(reason) => self.finish(
                id,
                JobResult::Failed,
                0,
                Duration::ZERO,
                Some(reason),
                Vec::new(),
            ),
        }
    }

    /// Applies the job's `if:` (default `success()`: every need succeeded).
    fn decide(&self, id: JobId) -> Decision {
        let plan = &self.shared.plan;
        let job = &plan.jobs[id.0];
        let blocker = job.needs.iter().find_map(|need| {
            let done = self.shared.finished[need.0].get()?;
            (done.result != JobResult::Success).then(|| {
                format!(
                    "needs `{}`, which {}",
                    plan.jobs[need.0].name,
                    describe(done.result)
                )
            })
        });
        let Some(condition) = &job.condition else {
            return blocker.map_or(Decision::Run, Decision::Skip);
        };
        if !condition.uses_status_function()
            && let Some(reason) = blocker
        {
            return Decision::Skip(reason);
        }
        let failed = job.needs.iter().any(|n| self.upstream_failed[n.0]);
        let cx = Context {
            values: context::base(
                &self.shared.options.vars,
                job,
                context::needs(job, &plan.jobs, &self.shared.finished),
                &self.shared.temp,
            ),
            status: context::status(false, failed),
            workspace: Some(&self.shared.options.workspace),
        };
        match crate::step::eval_condition(condition, &cx) {
            Ok(true) => Decision::Run,
            Ok(false) => Decision::Skip(format!("`if: {}` was false", condition.text.trim())),
            Err(message) => Decision::Fail(message),
        }
    }

    fn joined(
        &mut self,
        joined: Result<(tokio::task::Id, (JobId, JobOutcome)), tokio::task::JoinError>,
    ) {
        match joined {
            Ok((task, (id, outcome))) => {
                self.task_jobs.remove(&task);
                self.finish(
                    id,
                    outcome.result,
                    outcome.attempts,
                    outcome.duration,
                    outcome.reason,
                    outcome.outputs,
                );
            }
            Err(error) => {
                // A panic in a job task is a kiln bug; the run goes on and
                // says so rather than aborting.
                if let Some(id) = self.task_jobs.remove(&error.id()) {
                    let reason = format!("internal error in kiln: {error}");
                    self.finish(
                        id,
                        JobResult::Failed,
                        1,
                        Duration::ZERO,
                        Some(reason),
                        Vec::new(),
                    );
                }
            }
        }
    }

    fn finish(
        &mut self,
        id: JobId,
        result: JobResult,
        attempts: u32,
        duration: Duration,
        reason: Option<String>,
        outputs: Vec<(String, String)>,
    ) {
        let job = &self.shared.plan.jobs[id.0];
        let failed = matches!(result, JobResult::Failed | JobResult::TimedOut);
        // `continue-on-error` makes a failure count as success downstream.
        let effective = if failed && job.continue_on_error {
            JobResult::Success
        } else {
            result
        };
        self.upstream_failed[id.0] = (failed && !job.continue_on_error)
            || job.needs.iter().any(|n| self.upstream_failed[n.0]);
        self.shared.emit(Event::JobFinished {
            job: id,
            name: job.name.clone(),
            result,
            attempts,
            duration,
            reason,
            outputs: outputs.clone(),
        });
        let first = self.shared.finished[id.0]
            .set(Finished {
                result: effective,
                outputs,
            })
            .is_ok();
        debug_assert!(first, "job {} finished twice", id.0);
        for &dependent in &self.dependents[id.0] {
            self.remaining[dependent.0] -= 1;
            if self.remaining[dependent.0] == 0 {
                self.ready.push_back(dependent);
            }
        }
    }

    fn result(&self) -> RunResult {
        if self.cancelled_by_user {
            return RunResult::Cancelled;
        }
        let jobs = &self.shared.plan.jobs;
        let failed = self.shared.finished.iter().zip(jobs).any(|(done, job)| {
            !job.continue_on_error
                && done.get().is_none_or(|d| {
                    matches!(
                        d.result,
                        JobResult::Failed | JobResult::TimedOut | JobResult::Cancelled
                    )
                })
        });
        if failed || self.shared.pipeline_timed_out.load(Ordering::SeqCst) {
            RunResult::Failed
        } else {
            RunResult::Success
        }
    }
}

/// A job's task. The job's future is boxed: it is large, and tokio
/// allocates a task with cache-line alignment, which glibc's
/// `posix_memalign` serves several times slower than `malloc` at that
/// size (`kiln-bench scheduler` showed it).
fn run_job(shared: Arc<Shared>, id: JobId) -> impl Future<Output = (JobId, JobOutcome)> {
    let job = Box::pin(job::run(shared, id));
    async move { (id, job.await) }
}

fn describe(result: JobResult) -> &'static str {
    match result {
        JobResult::Success => "succeeded",
        JobResult::Failed => "failed",
        JobResult::Skipped => "was skipped",
        JobResult::Cancelled => "was cancelled",
        JobResult::TimedOut => "timed out",
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_finds_a_file_past_one_read_of_entries_and_sees_later_changes() {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = open_for_listing(temp.path()).expect("open the directory");
        assert!(!lists(&dir, "0-1-0.out").expect("list"));
        // Far more entries than one 4 KiB read of the directory holds.
        for i in 0..600 {
            std::fs::write(temp.path().join(format!("{i}-1-0.out")), "").expect("write");
        }
        for i in 0..600 {
            let name = format!("{i}-1-0.out");
            assert!(lists(&dir, &name).expect("list"), "{name} is there");
        }
        assert!(!lists(&dir, "600-1-0.out").expect("list"));
        std::fs::remove_file(temp.path().join("599-1-0.out")).expect("remove");
        assert!(
            !lists(&dir, "599-1-0.out").expect("list"),
            "the same fd, listed again"
        );
    }
}
