//! Writing a run's record while it executes.
//!
//! Each call is one or two small statements; the CLI makes one call per
//! engine event (job started, step finished, …), or one for a start and
//! its end that arrive in the same batch ([`Store::job_ran`],
//! [`Store::step_ran`]), so a run killed at any point leaves a record that
//! is true up to its last commit.

use std::path::Path;
use std::time::Duration;

use crate::lock::RunLock;
use crate::{Result, RunId, RunStatus, Store, duration_ms, now_ms};

/// A run this process is executing. Holds the liveness lock, so other kiln
/// processes see the run as `running` rather than `interrupted`; hand it
/// back to [`Store::finish_run`] to close the record.
#[derive(Debug)]
#[must_use = "a live run must be finished with Store::finish_run"]
pub struct LiveRun {
    id: RunId,
    lock: RunLock,
}

impl LiveRun {
    /// The run's number.
    pub fn id(&self) -> RunId {
        self.id
    }
}

/// A step attempt that began.
#[derive(Debug, Clone, Copy)]
pub struct StepStart<'a> {
    /// Job index in the plan.
    pub job: usize,
    /// Step index in the job.
    pub step: usize,
    /// The job attempt this step belongs to (1-based).
    pub attempt: u32,
    /// Display name.
    pub name: &'a str,
    /// Its log file, relative to the state directory.
    pub log: Option<&'a Path>,
}

/// A step attempt that ended.
#[derive(Debug, Clone, Copy)]
pub struct StepEnd<'a> {
    /// Job index in the plan.
    pub job: usize,
    /// Step index in the job.
    pub step: usize,
    /// The job attempt this step belongs to (1-based).
    pub attempt: u32,
    /// How it ended (`success`, `failed`, `skipped`, …).
    pub result: &'a str,
    /// Exit code if the process exited normally.
    pub exit_code: Option<i32>,
    /// Wall time.
    pub duration: Duration,
}

/// A job that reached its final state.
#[derive(Debug, Clone, Copy)]
pub struct JobEnd<'a> {
    /// Job index in the plan.
    pub job: usize,
    /// Final result (`success`, `failed`, `skipped`, `cancelled`, `timed_out`).
    pub result: &'a str,
    /// Attempts made (0 when it never started).
    pub attempts: u32,
    /// Wall time over all attempts.
    pub duration: Duration,
    /// Why, for anything but success.
    pub reason: Option<&'a str>,
}

impl Store {
    /// Starts a run record and takes its liveness lock.
    ///
    /// The row and the lock appear atomically to other processes: the row is
    /// committed only after the lock is held, so a concurrent
    /// [`Store::open`] can never mistake a starting run for a dead one.
    pub fn begin_run(&mut self, pipeline: &str, file: &str) -> Result<LiveRun> {
        let lock_dir = self.root.join("runs");
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| crate::db_err(&self.db_path, e))?;
        tx.execute(
            "INSERT INTO runs (pipeline, file, started_ms, status) VALUES (?1, ?2, ?3, 'running')",
            (pipeline, file, now_ms()),
        )
        .map_err(|e| crate::db_err(&self.db_path, e))?;
        let id = tx.last_insert_rowid();
        let lock = RunLock::acquire(lock_dir.join(format!("{id}.lock")))?;
        tx.commit().map_err(|e| crate::db_err(&self.db_path, e))?;
        Ok(LiveRun { id, lock })
    }

    /// Registers the jobs a run will consider (index and unique name), in
    /// plan order, so `runs show` lists jobs that never started too.
    pub fn add_jobs<'a>(
        &mut self,
        run: RunId,
        jobs: impl IntoIterator<Item = (usize, &'a str)>,
    ) -> Result<()> {
        // A savepoint, so this also works inside a batch.
        let tx = self
            .conn
            .savepoint()
            .map_err(|e| crate::db_err(&self.db_path, e))?;
        {
            let mut insert = tx
                .prepare_cached("INSERT OR IGNORE INTO jobs (run, job, name) VALUES (?1, ?2, ?3)")
                .map_err(|e| crate::db_err(&self.db_path, e))?;
            for (job, name) in jobs {
                insert
                    .execute((run, job as i64, name))
                    .map_err(|e| crate::db_err(&self.db_path, e))?;
            }
        }
        tx.commit().map_err(|e| self.db(e))
    }

    /// A job attempt started.
    pub fn job_started(&mut self, run: RunId, job: usize, attempt: u32) -> Result<()> {
        let now = now_ms();
        self.exec(
            "UPDATE jobs SET attempts = ?3, started_ms = coalesce(started_ms, ?4)
                 WHERE run = ?1 AND job = ?2",
            (run, job as i64, attempt, now),
        )
        .and_then(|_| {
            self.exec(
                "INSERT OR REPLACE INTO attempts (run, job, attempt, started_ms)
                     VALUES (?1, ?2, ?3, ?4)",
                (run, job as i64, attempt, now),
            )
        })
        .map(drop)
        .map_err(|e| self.db(e))
    }

    /// A job attempt that started and reached its final state in the same
    /// batch: the record of [`Store::job_started`] for attempt
    /// `end.attempts` then [`Store::job_finished`], written as one row
    /// each for the job and the attempt. Most short jobs end this way, and
    /// row writes are most of what recording a run costs.
    pub fn job_ran(&mut self, run: RunId, end: JobEnd<'_>) -> Result<()> {
        self.end_job(
            "UPDATE jobs SET result = ?3, attempts = ?4, started_ms = coalesce(started_ms, ?5),
                        finished_ms = ?5, duration_ms = ?6, reason = ?7
                 WHERE run = ?1 AND job = ?2",
            "INSERT OR REPLACE INTO attempts
                 (run, job, attempt, started_ms, finished_ms, result, reason)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)",
            run,
            &end,
        )
    }

    /// A job attempt failed and will be retried after `delay`.
    pub fn job_retrying(
        &mut self,
        run: RunId,
        job: usize,
        attempt: u32,
        delay: Duration,
        reason: &str,
    ) -> Result<()> {
        self.exec(
            "UPDATE attempts SET finished_ms = ?4, result = 'failed', reason = ?5,
                        retry_delay_ms = ?6
                 WHERE run = ?1 AND job = ?2 AND attempt = ?3",
            (
                run,
                job as i64,
                attempt,
                now_ms(),
                reason,
                duration_ms(delay),
            ),
        )
        .map(drop)
        .map_err(|e| self.db(e))
    }

    /// A step attempt started.
    pub fn step_started(&mut self, run: RunId, step: StepStart<'_>) -> Result<()> {
        let log = step.log.map(|p| p.to_string_lossy().into_owned());
        self.exec(
            "INSERT OR REPLACE INTO steps (run, job, step, attempt, name, started_ms, log)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            (
                run,
                step.job as i64,
                step.step as i64,
                step.attempt,
                step.name,
                now_ms(),
                log,
            ),
        )
        .map(drop)
        .map_err(|e| self.db(e))
    }

    /// A step attempt that started and ended in the same batch: the
    /// record of [`Store::step_started`] then [`Store::step_finished`] in
    /// one row write.
    pub fn step_ran(&mut self, run: RunId, start: StepStart<'_>, end: StepEnd<'_>) -> Result<()> {
        let log = start.log.map(|p| p.to_string_lossy().into_owned());
        self.exec(
            "INSERT OR REPLACE INTO steps
                 (run, job, step, attempt, name, started_ms, log, result, exit_code, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            (
                run,
                start.job as i64,
                start.step as i64,
                start.attempt,
                start.name,
                now_ms(),
                log,
                end.result,
                end.exit_code,
                duration_ms(end.duration),
            ),
        )
        .map(drop)
        .map_err(|e| self.db(e))
    }

    /// A step attempt ended.
    pub fn step_finished(&mut self, run: RunId, step: StepEnd<'_>) -> Result<()> {
        self.exec(
            "UPDATE steps SET result = ?5, exit_code = ?6, duration_ms = ?7
                 WHERE run = ?1 AND job = ?2 AND step = ?3 AND attempt = ?4",
            (
                run,
                step.job as i64,
                step.step as i64,
                step.attempt,
                step.result,
                step.exit_code,
                duration_ms(step.duration),
            ),
        )
        .map(drop)
        .map_err(|e| self.db(e))
    }

    /// A job reached its final state.
    pub fn job_finished(&mut self, run: RunId, end: JobEnd<'_>) -> Result<()> {
        self.end_job(
            "UPDATE jobs SET result = ?3, attempts = ?4, finished_ms = ?5,
                        duration_ms = ?6, reason = ?7
                 WHERE run = ?1 AND job = ?2",
            "UPDATE attempts SET finished_ms = coalesce(finished_ms, ?4),
                        result = coalesce(result, ?5), reason = coalesce(reason, ?6)
                 WHERE run = ?1 AND job = ?2 AND attempt = ?3",
            run,
            &end,
        )
    }

    /// Starts a batch: the record updates until [`Store::commit_batch`]
    /// are committed together. A run records several rows per step; one
    /// commit per burst of events instead of per row keeps SQLite off the
    /// scheduler's critical path (`kiln-bench scheduler`). Does nothing if a
    /// batch is already open.
    pub fn begin_batch(&mut self) -> Result<()> {
        if !self.batch_open() {
            self.conn.execute_batch("BEGIN").map_err(|e| self.db(e))?;
        }
        Ok(())
    }

    /// Whether a batch is open.
    pub fn batch_open(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// Commits the open batch, if any.
    pub fn commit_batch(&mut self) -> Result<()> {
        if self.batch_open() {
            self.conn.execute_batch("COMMIT").map_err(|e| self.db(e))?;
        }
        Ok(())
    }

    /// Closes the record with its final status and releases the lock.
    /// Commits an open batch first: the status must be durable before the
    /// lock goes, or a crash in between would not read as `interrupted`.
    pub fn finish_run(
        &mut self,
        live: LiveRun,
        status: RunStatus,
        duration: Duration,
    ) -> Result<()> {
        self.commit_batch()?;
        self.exec(
            "UPDATE runs SET status = ?2, finished_ms = ?3, duration_ms = ?4 WHERE id = ?1",
            (live.id, status.as_str(), now_ms(), duration_ms(duration)),
        )
        .map_err(|e| self.db(e))?;
        // Its downloads protect their blobs from `gc` only while it runs.
        self.exec("DELETE FROM refs WHERE run = ?1", [live.id])
            .map_err(|e| self.db(e))?;
        // Only after the status is durable: until then a crash must read as
        // `interrupted`.
        live.lock.release();
        Ok(())
    }

    /// Records a job's final state, both ways of recording one: `jobs_sql`
    /// (an `UPDATE jobs`: run, job, result, attempts, `now`, duration,
    /// reason as `?1`–`?7`), then `attempts_sql` for its last attempt (run,
    /// job, attempt, `now`, result, reason as `?1`–`?6`).
    fn end_job(
        &self,
        jobs_sql: &str,
        attempts_sql: &str,
        run: RunId,
        end: &JobEnd<'_>,
    ) -> Result<()> {
        let now = now_ms();
        let job = end.job as i64;
        self.exec(
            jobs_sql,
            (
                run,
                job,
                end.result,
                end.attempts,
                now,
                duration_ms(end.duration),
                end.reason,
            ),
        )
        .and_then(|_| {
            self.exec(
                attempts_sql,
                (run, job, end.attempts, now, end.result, end.reason),
            )
        })
        .map(drop)
        .map_err(|e| self.db(e))
    }

    /// Runs one statement, prepared once per connection (rusqlite's
    /// statement cache): parsing SQL per event cost more than executing it.
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.conn.prepare_cached(sql)?.execute(params)
    }
}
