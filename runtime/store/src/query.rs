//! Reading run records back (`kiln runs list`, `kiln runs show`, `kiln runs logs`).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Row;

use crate::error::{Result, StoreError};
use crate::{RunId, RunStatus, Store};

/// One line of `kiln runs list`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunSummary {
    /// The run's number.
    pub id: RunId,
    /// Pipeline name.
    pub pipeline: String,
    /// The pipeline file as the user named it.
    pub file: String,
    /// Current status.
    pub status: RunStatus,
    /// Wall-clock start.
    pub started: SystemTime,
    /// Wall time, once finished.
    pub duration: Option<Duration>,
}

/// Everything recorded about one run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunDetails {
    /// The run itself.
    pub run: RunSummary,
    /// Its jobs in plan order, including those that never started.
    pub jobs: Vec<JobRecord>,
}

/// One job of a run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobRecord {
    /// Index in the plan.
    pub index: usize,
    /// Unique job name (`test (shard=1)`).
    pub name: String,
    /// Final result; `None` while pending or running.
    pub result: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// Wall time over all attempts, once finished.
    pub duration: Option<Duration>,
    /// Why it did not succeed.
    pub reason: Option<String>,
    /// Step attempts in (step, attempt) order.
    pub steps: Vec<StepRecord>,
}

/// One attempt of one step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StepRecord {
    /// Index in the job.
    pub index: usize,
    /// Job attempt it ran in.
    pub attempt: u32,
    /// Display name.
    pub name: String,
    /// Result; `None` while running.
    pub result: Option<String>,
    /// Exit code when the process exited normally.
    pub exit_code: Option<i32>,
    /// Wall time, once finished.
    pub duration: Option<Duration>,
    /// Log file, relative to the state directory.
    pub log: Option<PathBuf>,
}

pub(crate) const SUMMARY_SELECT: &str =
    "SELECT id, pipeline, file, status, started_ms, duration_ms FROM runs";

/// Maps a [`SUMMARY_SELECT`] row; the inner `Result` carries a bad status.
pub(crate) fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<Result<RunSummary>> {
    let status: String = row.get(3)?;
    let summary = RunSummary {
        id: row.get(0)?,
        pipeline: row.get(1)?,
        file: row.get(2)?,
        status: RunStatus::Running,
        started: from_ms(row.get(4)?),
        duration: row.get::<_, Option<i64>>(5)?.map(to_duration),
    };
    Ok(status
        .parse()
        .map(|status| RunSummary { status, ..summary }))
}

impl Store {
    /// The newest `limit` runs, newest first.
    pub fn list_runs(&self, limit: usize) -> Result<Vec<RunSummary>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare(&format!("{SUMMARY_SELECT} ORDER BY id DESC LIMIT ?1"))
            .map_err(|e| self.db(e))?;
        let rows: Vec<Result<RunSummary>> = stmt
            .query_map([limit], summary_from_row)
            .and_then(Iterator::collect)
            .map_err(|e| self.db(e))?;
        rows.into_iter().collect()
    }

    /// The ids of the runs whose status is `status`, newest first: an
    /// index lookup, not a read of the whole history.
    pub fn run_ids_with_status(&self, status: RunStatus) -> Result<Vec<RunId>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM runs WHERE status = ?1 ORDER BY id DESC")
            .map_err(|e| self.db(e))?;
        stmt.query_map([status.as_str()], |row| row.get(0))
            .and_then(Iterator::collect)
            .map_err(|e| self.db(e))
    }

    /// The newest run's id, if any (for `kiln runs show last`).
    pub fn last_run(&self) -> Result<Option<RunId>> {
        self.conn
            .query_row("SELECT max(id) FROM runs", [], |row| row.get(0))
            .map_err(|e| self.db(e))
    }

    /// Everything recorded about run `id`.
    pub fn run_details(&self, id: RunId) -> Result<RunDetails> {
        let run = self.summary(id)?.ok_or(StoreError::UnknownRun { id })?;
        let mut jobs = self.jobs(id)?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT job, step, attempt, name, result, exit_code, duration_ms, log
                 FROM steps WHERE run = ?1 ORDER BY job, step, attempt",
            )
            .map_err(|e| self.db(e))?;
        let steps: Vec<(usize, StepRecord)> = stmt
            .query_map([id], |row| {
                Ok((
                    row.get::<_, i64>(0)? as usize,
                    StepRecord {
                        index: row.get::<_, i64>(1)? as usize,
                        attempt: row.get(2)?,
                        name: row.get(3)?,
                        result: row.get(4)?,
                        exit_code: row.get(5)?,
                        duration: row.get::<_, Option<i64>>(6)?.map(to_duration),
                        log: row.get::<_, Option<String>>(7)?.map(PathBuf::from),
                    },
                ))
            })
            .and_then(Iterator::collect)
            .map_err(|e| self.db(e))?;
        for (job, step) in steps {
            if let Some(record) = jobs.iter_mut().find(|j| j.index == job) {
                record.steps.push(step);
            }
        }
        Ok(RunDetails { run, jobs })
    }

    fn jobs(&self, run: RunId) -> Result<Vec<JobRecord>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT job, name, result, attempts, duration_ms, reason
                 FROM jobs WHERE run = ?1 ORDER BY job",
            )
            .map_err(|e| self.db(e))?;
        stmt.query_map([run], |row| {
            Ok(JobRecord {
                index: row.get::<_, i64>(0)? as usize,
                name: row.get(1)?,
                result: row.get(2)?,
                attempts: row.get(3)?,
                duration: row.get::<_, Option<i64>>(4)?.map(to_duration),
                reason: row.get(5)?,
                steps: Vec::new(),
            })
        })
        .and_then(Iterator::collect)
        .map_err(|e| self.db(e))
    }
}

fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + to_duration(ms)
}

fn to_duration(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
