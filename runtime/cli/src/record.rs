//! The event consumer that writes the run record (SQLite) and the step log
//! files. The store knows nothing about engine events; this is the mapping.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use kiln_engine::{Event, RunResult};
use kiln_store::{JobEnd, LiveRun, LogWriter, RunStatus, StepEnd, StepStart, Store, StoreError};

/// Applies engine events to a run record and its logs.
pub(crate) struct Recorder {
    store: Store,
    live: Option<LiveRun>,
    logs: Option<LogWriter>,
    /// Current attempt per job: step events do not carry it.
    attempts: HashMap<usize, u32>,
    /// Starts not written yet, while a batch is open (outside one, every
    /// event is written at once): a short job's start and end usually
    /// arrive in the same batch, and writing each row once with both
    /// halved the statements per job. All are written before the batch
    /// commits, so the committed record is the same.
    held: Vec<Held>,
    /// The first write error, reported once; later ones are likely the same.
    warned: bool,
}

impl Recorder {
    /// Records into `store` for the run `live`.
    pub(crate) fn new(store: Store, live: LiveRun) -> Self {
        Self {
            store,
            live: Some(live),
            logs: None,
            attempts: HashMap::new(),
            held: Vec::new(),
            warned: false,
        }
    }

    /// Applies one event. A failing disk must not stop the run: the problem
    /// is reported once on stderr and the run goes on.
    pub(crate) fn record(&mut self, event: &Event) {
        if let Err(err) = self.apply(event) {
            self.warn(&err);
        }
    }

    /// Starts recording a burst of events in one commit.
    pub(crate) fn begin_batch(&mut self) {
        if let Err(err) = self.store.begin_batch() {
            self.warn(&err);
        }
    }

    /// Commits the burst started by [`Recorder::begin_batch`].
    pub(crate) fn commit_batch(&mut self) {
        if let Err(err) = self
            .write_held(|_| true)
            .and_then(|()| self.store.commit_batch())
        {
            self.warn(&err);
        }
    }

    /// Closes the record if the engine never sent `RunFinished` (it
    /// returned an error): the run counts as failed.
    pub(crate) fn finish(mut self, duration: Duration) {
        if let Err(err) = self.write_held(|_| true) {
            self.warn(&err);
        }
        if let Some(logs) = self.logs.as_mut()
            && let Err(err) = logs.close_all()
        {
            self.warn(&err);
        }
        if let Some(live) = self.live.take()
            && let Err(err) = self.store.finish_run(live, RunStatus::Failed, duration)
        {
            self.warn(&err);
        }
    }

    fn warn(&mut self, err: &StoreError) {
        if !std::mem::replace(&mut self.warned, true) {
            let mut text = format!("warning: the run record or logs are incomplete: {err}");
            let mut cause = std::error::Error::source(err);
            while let Some(inner) = cause {
                text.push_str(&format!(": {inner}"));
                cause = inner.source();
            }
            eprintln!("{text}");
        }
    }

    fn run_id(&self) -> kiln_store::RunId {
        self.live.as_ref().map_or(0, LiveRun::id)
    }

    /// Writes the held starts that `which` selects, in arrival order.
    fn write_held(&mut self, which: impl Fn(&Held) -> bool) -> Result<(), StoreError> {
        let run = self.run_id();
        let (write, keep): (Vec<Held>, Vec<Held>) =
            std::mem::take(&mut self.held).into_iter().partition(which);
        self.held = keep;
        for held in write {
            match held {
                Held::Job { job, attempt } => self.store.job_started(run, job, attempt)?,
                Held::Step(start) => self.store.step_started(run, start.as_start())?,
            }
        }
        Ok(())
    }

    /// Takes the held start of `job`'s step `step`, if any.
    fn take_held_step(&mut self, job: usize, step: usize) -> Option<HeldStep> {
        let at = self
            .held
            .iter()
            .position(|h| matches!(h, Held::Step(s) if s.job == job && s.step == step))?;
        match self.held.remove(at) {
            Held::Step(start) => Some(start),
            Held::Job { .. } => None,
        }
    }

    /// Takes the held start of `job`'s attempt `attempt`, if any.
    fn take_held_job(&mut self, job: usize, attempt: u32) -> bool {
        let at = self.held.iter().position(
            |h| matches!(h, Held::Job { job: j, attempt: a } if *j == job && *a == attempt),
        );
        at.map(|at| self.held.remove(at)).is_some()
    }

    fn apply(&mut self, event: &Event) -> Result<(), StoreError> {
        let run = self.run_id();
        match event {
            Event::RunStarted { jobs, .. } => {
                let list: Vec<(usize, &str)> =
                    jobs.iter().map(|j| (j.id.0, j.name.as_str())).collect();
                self.logs = Some(LogWriter::new(self.store.root(), run, list.iter().copied()));
                self.store.add_jobs(run, list)?;
            }
            Event::JobStarted { job, attempt, .. } => {
                self.attempts.insert(job.0, *attempt);
                if self.store.batch_open() {
                    self.held.push(Held::Job {
                        job: job.0,
                        attempt: *attempt,
                    });
                } else {
                    self.store.job_started(run, job.0, *attempt)?;
                }
            }
            Event::StepStarted {
                job,
                step,
                name,
                attempt,
            } => {
                let log = match self.logs.as_mut() {
                    Some(logs) => Some(logs.open_step(job.0, *step, name, *attempt)?),
                    None => None,
                };
                let start = HeldStep {
                    job: job.0,
                    step: *step,
                    attempt: *attempt,
                    name: name.clone(),
                    log,
                };
                if self.store.batch_open() {
                    self.held.push(Held::Step(start));
                } else {
                    self.store.step_started(run, start.as_start())?;
                }
            }
            Event::Output {
                job, step, line, ..
            } => {
                if let Some(logs) = self.logs.as_mut() {
                    logs.write_line(job.0, *step, line)?;
                }
            }
            Event::StepFinished {
                job,
                step,
                result,
                exit_code,
                duration,
            } => {
                if let Some(logs) = self.logs.as_mut() {
                    logs.close_step(job.0, *step)?;
                }
                let result = wire_name(result);
                let end = StepEnd {
                    job: job.0,
                    step: *step,
                    attempt: self.attempts.get(&job.0).copied().unwrap_or(1),
                    result: &result,
                    exit_code: *exit_code,
                    duration: *duration,
                };
                match self.take_held_step(job.0, *step) {
                    Some(start) => self.store.step_ran(run, start.as_start(), end)?,
                    None => self.store.step_finished(run, end)?,
                }
            }
            Event::JobRetrying {
                job,
                attempt,
                delay,
                reason,
            } => {
                self.write_held(|h| h.job() == job.0)?;
                self.store
                    .job_retrying(run, job.0, *attempt, *delay, reason)?;
            }
            Event::JobFinished {
                job,
                result,
                attempts,
                duration,
                reason,
                ..
            } => {
                let result = wire_name(result);
                let end = JobEnd {
                    job: job.0,
                    result: &result,
                    attempts: *attempts,
                    duration: *duration,
                    reason: reason.as_deref(),
                };
                if self.take_held_job(job.0, *attempts) {
                    self.store.job_ran(run, end)?;
                } else {
                    self.write_held(|h| h.job() == job.0)?;
                    self.store.job_finished(run, end)?;
                }
            }
            Event::RunFinished {
                result, duration, ..
            } => {
                self.write_held(|_| true)?;
                if let Some(logs) = self.logs.as_mut() {
                    logs.close_all()?;
                }
                if let Some(live) = self.live.take() {
                    self.store
                        .finish_run(live, run_status(*result), *duration)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A start event not yet written to the record.
enum Held {
    Job { job: usize, attempt: u32 },
    Step(HeldStep),
}

impl Held {
    fn job(&self) -> usize {
        match self {
            Held::Job { job, .. } => *job,
            Held::Step(start) => start.job,
        }
    }
}

/// A held [`StepStart`], owning its strings.
struct HeldStep {
    job: usize,
    step: usize,
    attempt: u32,
    name: String,
    log: Option<PathBuf>,
}

impl HeldStep {
    fn as_start(&self) -> StepStart<'_> {
        StepStart {
            job: self.job,
            step: self.step,
            attempt: self.attempt,
            name: &self.name,
            log: self.log.as_deref(),
        }
    }
}

/// The record's status for the engine's run result.
pub(crate) fn run_status(result: RunResult) -> RunStatus {
    match result {
        RunResult::Success => RunStatus::Success,
        RunResult::Cancelled => RunStatus::Cancelled,
        _ => RunStatus::Failed,
    }
}

/// An event enum's JSON spelling (`timed_out`), so the record, the
/// `--json` stream and `runs show` use the same words.
pub(crate) fn wire_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use kiln_engine::event::JobInfo;
    use kiln_engine::{JobResult, StepResult, Stream};
    use kiln_pipeline::JobId;

    use super::*;

    /// A retried job and a skipped dependent, as the engine would report them.
    fn events(run: i64) -> Vec<Event> {
        let (a, b) = (JobId(0), JobId(1));
        let output = |line: &str| Event::Output {
            job: a,
            step: 0,
            stream: Stream::Stdout,
            line: line.into(),
        };
        let step = |attempt| Event::StepStarted {
            job: a,
            step: 0,
            name: "make it".into(),
            attempt,
        };
        let failed = Event::StepFinished {
            job: a,
            step: 0,
            result: StepResult::Failed,
            exit_code: Some(2),
            duration: Duration::from_millis(5),
        };
        vec![
            Event::RunStarted {
                run,
                pipeline: "p".into(),
                jobs: vec![
                    JobInfo {
                        id: a,
                        name: "build (os=x)".into(),
                        steps: vec!["make it".into()],
                        needs: vec![],
                    },
                    JobInfo {
                        id: b,
                        name: "ship".into(),
                        steps: vec!["go".into()],
                        needs: vec![a],
                    },
                ],
                at: SystemTime::now(),
            },
            Event::JobStarted {
                job: a,
                name: "build (os=x)".into(),
                attempt: 1,
            },
            step(1),
            output("first"),
            failed.clone(),
            Event::JobRetrying {
                job: a,
                attempt: 1,
                delay: Duration::from_millis(10),
                reason: "exit code 2".into(),
            },
            Event::JobStarted {
                job: a,
                name: "build (os=x)".into(),
                attempt: 2,
            },
            step(2),
            output("second"),
            failed,
            Event::JobFinished {
                job: a,
                name: "build (os=x)".into(),
                result: JobResult::Failed,
                attempts: 2,
                duration: Duration::from_millis(30),
                reason: Some("step `make it` failed".into()),
                outputs: vec![],
            },
            Event::JobFinished {
                job: b,
                name: "ship".into(),
                result: JobResult::Skipped,
                attempts: 0,
                duration: Duration::ZERO,
                reason: Some("needs `build (os=x)`, which failed".into()),
                outputs: vec![],
            },
            Event::RunFinished {
                run,
                result: RunResult::Failed,
                duration: Duration::from_millis(40),
            },
        ]
    }

    #[test]
    fn events_become_a_record_and_log_files() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".kiln");
        let mut store = Store::open(&state).unwrap();
        let live = store.begin_run("p", "kiln.yml").unwrap();
        let run = live.id();
        let mut recorder = Recorder::new(store, live);
        for event in events(run) {
            recorder.record(&event);
        }
        assert!(!recorder.warned);
        drop(recorder);

        let details = Store::open(&state).unwrap().run_details(run).unwrap();
        assert_eq!(details.run.status, RunStatus::Failed);
        let build = &details.jobs[0];
        assert_eq!(
            (build.result.as_deref(), build.attempts),
            (Some("failed"), 2)
        );
        let steps: Vec<(u32, Option<&str>, Option<i32>)> = build
            .steps
            .iter()
            .map(|s| (s.attempt, s.result.as_deref(), s.exit_code))
            .collect();
        assert_eq!(
            steps,
            vec![(1, Some("failed"), Some(2)), (2, Some("failed"), Some(2))]
        );
        let log = build.steps[0].log.clone().unwrap();
        assert_eq!(
            log,
            std::path::Path::new("logs/1/build-os-x/01-make-it.log")
        );
        assert_eq!(
            std::fs::read_to_string(state.join(log)).unwrap(),
            "first\n--- attempt 2 ---\nsecond\n"
        );
        let ship = &details.jobs[1];
        assert_eq!(ship.result.as_deref(), Some("skipped"));
        assert_eq!(
            ship.reason.as_deref(),
            Some("needs `build (os=x)`, which failed")
        );
    }

    /// Records `events(1)` into a fresh state directory, committing a
    /// batch after each event whose index `commit_after` accepts.
    fn record_batched(commit_after: impl Fn(usize) -> bool) -> RunDetailsText {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".kiln");
        let mut store = Store::open(&state).unwrap();
        let live = store.begin_run("p", "kiln.yml").unwrap();
        let mut recorder = Recorder::new(store, live);
        recorder.begin_batch();
        for (index, event) in events(1).iter().enumerate() {
            recorder.record(event);
            if commit_after(index) {
                recorder.commit_batch();
                recorder.begin_batch();
            }
        }
        recorder.commit_batch();
        assert!(!recorder.warned);
        drop(recorder);
        let details = Store::open(&state).unwrap().run_details(1).unwrap();
        RunDetailsText(format!("{:?} {:?}", details.run.status, details.jobs))
    }

    #[derive(Debug, PartialEq)]
    struct RunDetailsText(String);

    #[test]
    fn batching_starts_with_their_ends_records_the_same_as_writing_each() {
        let each = record_batched(|_| true);
        assert!(each.0.contains("attempts: 2"), "{each:?}");
        assert_eq!(record_batched(|_| false), each);
        // Starts committed in one batch, their ends in the next.
        assert_eq!(record_batched(|i| i % 2 == 1), each);
        assert_eq!(record_batched(|i| i % 3 == 0), each);
    }

    #[test]
    fn a_stream_without_run_finished_is_recorded_as_failed() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".kiln");
        let mut store = Store::open(&state).unwrap();
        let live = store.begin_run("p", "kiln.yml").unwrap();
        let mut recorder = Recorder::new(store, live);
        for event in events(1).into_iter().take(4) {
            recorder.record(&event);
        }
        recorder.finish(Duration::from_millis(7));
        let details = Store::open(&state).unwrap().run_details(1).unwrap();
        assert_eq!(details.run.status, RunStatus::Failed);
        assert_eq!(details.run.duration, Some(Duration::from_millis(7)));
        // The partial log was flushed.
        assert_eq!(
            std::fs::read_to_string(state.join("logs/1/build-os-x/01-make-it.log")).unwrap(),
            "first\n"
        );
    }
}
