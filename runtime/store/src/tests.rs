//! Store behaviour against a real SQLite file in a temp directory.

use std::time::Duration;

use super::*;

fn store(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join(".kiln")).expect("open store")
}

#[test]
fn open_creates_the_layout_and_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    assert!(dir.path().join(".kiln/kiln.db").is_file());
    assert!(dir.path().join(".kiln/runs").is_dir());
    assert!(dir.path().join(".kiln/logs").is_dir());
    assert_eq!(schema::version(&store.conn).unwrap(), 2);
    drop(store);
    // Reopening is a no-op migration.
    assert_eq!(schema::version(&self::store(&dir).conn).unwrap(), 2);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    store.conn.pragma_update(None, "user_version", 9).unwrap();
    drop(store);
    let err = Store::open(&dir.path().join(".kiln")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "run database `{}` has schema version 9, this kiln understands up to 2; upgrade kiln",
            dir.path().join(".kiln/kiln.db").display()
        )
    );
}

#[test]
fn a_run_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(&dir);
    let live = store.begin_run("ship", "kiln.yml").unwrap();
    let run = live.id();
    assert_eq!(run, 1);
    store
        .add_jobs(run, [(0, "build"), (1, "test (shard=1)")])
        .unwrap();
    store.job_started(run, 0, 1).unwrap();
    let log = std::path::Path::new("logs/1/build/01-make.log");
    store
        .step_started(
            run,
            StepStart {
                job: 0,
                step: 0,
                attempt: 1,
                name: "make",
                log: Some(log),
            },
        )
        .unwrap();
    store
        .step_finished(
            run,
            StepEnd {
                job: 0,
                step: 0,
                attempt: 1,
                result: "failed",
                exit_code: Some(3),
                duration: Duration::from_millis(1500),
            },
        )
        .unwrap();
    store
        .job_retrying(run, 0, 1, Duration::from_secs(2), "exit code 3")
        .unwrap();
    store.job_started(run, 0, 2).unwrap();
    store
        .job_finished(
            run,
            JobEnd {
                job: 0,
                result: "failed",
                attempts: 2,
                duration: Duration::from_secs(4),
                reason: Some("exit code 3"),
            },
        )
        .unwrap();
    store
        .job_finished(
            run,
            JobEnd {
                job: 1,
                result: "skipped",
                attempts: 0,
                duration: Duration::ZERO,
                reason: Some("needs `build`, which failed"),
            },
        )
        .unwrap();
    store
        .finish_run(live, RunStatus::Failed, Duration::from_secs(5))
        .unwrap();
    assert!(!dir.path().join(".kiln/runs/1.lock").exists());

    let details = store.run_details(1).unwrap();
    assert_eq!(details.run.pipeline, "ship");
    assert_eq!(details.run.status, RunStatus::Failed);
    assert_eq!(details.run.duration, Some(Duration::from_secs(5)));
    assert_eq!(details.jobs.len(), 2);
    let build = &details.jobs[0];
    assert_eq!(
        (build.name.as_str(), build.result.as_deref(), build.attempts),
        ("build", Some("failed"), 2)
    );
    assert_eq!(build.steps.len(), 1);
    assert_eq!(build.steps[0].exit_code, Some(3));
    assert_eq!(build.steps[0].log.as_deref(), Some(log));
    let test = &details.jobs[1];
    assert_eq!(test.result.as_deref(), Some("skipped"));
    assert_eq!(test.reason.as_deref(), Some("needs `build`, which failed"));

    let attempts: Vec<(u32, String, Option<i64>)> = store
        .conn
        .prepare("SELECT attempt, result, retry_delay_ms FROM attempts ORDER BY attempt")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        attempts,
        vec![
            (1, "failed".to_owned(), Some(2000)),
            (2, "failed".to_owned(), None)
        ]
    );
}

#[test]
fn list_runs_is_newest_first_and_limited() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(&dir);
    for status in [RunStatus::Success, RunStatus::Failed, RunStatus::Cancelled] {
        let live = store.begin_run("p", "kiln.yml").unwrap();
        store
            .finish_run(live, status, Duration::from_millis(10))
            .unwrap();
    }
    let runs = store.list_runs(2).unwrap();
    let seen: Vec<(RunId, RunStatus)> = runs.iter().map(|r| (r.id, r.status)).collect();
    assert_eq!(
        seen,
        vec![(3, RunStatus::Cancelled), (2, RunStatus::Failed)]
    );
    assert_eq!(store.last_run().unwrap(), Some(3));
}

#[test]
fn an_unknown_run_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = store(&dir).run_details(42).unwrap_err();
    assert!(matches!(err, StoreError::UnknownRun { id: 42 }));
    assert_eq!(err.to_string(), "there is no run `42`");
}

#[test]
fn a_live_run_stays_running_and_a_dead_one_becomes_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let mut owner = store(&dir);
    let live = owner.begin_run("p", "kiln.yml").unwrap();
    owner.add_jobs(live.id(), [(0, "a"), (1, "b")]).unwrap();
    owner.job_started(live.id(), 0, 1).unwrap();
    owner
        .step_started(
            live.id(),
            StepStart {
                job: 0,
                step: 0,
                attempt: 1,
                name: "s",
                log: None,
            },
        )
        .unwrap();

    // Another opener sees the lock held: the run is alive.
    let other = store(&dir);
    assert_eq!(other.list_runs(1).unwrap()[0].status, RunStatus::Running);

    // Dropping without finishing is what SIGKILL looks like: the lock goes
    // away with the file description, the lock file stays behind.
    drop(live);
    assert!(dir.path().join(".kiln/runs/1.lock").exists());
    let after = store(&dir);
    let details = after.run_details(1).unwrap();
    assert_eq!(details.run.status, RunStatus::Interrupted);
    assert!(details.run.duration.is_some());
    assert_eq!(details.jobs[0].result.as_deref(), Some("interrupted"));
    // A job that never started is not claimed to have been interrupted.
    assert_eq!(details.jobs[1].result, None);
    assert_eq!(
        details.jobs[0].steps[0].result.as_deref(),
        Some("interrupted")
    );
    assert!(!dir.path().join(".kiln/runs/1.lock").exists());
}

#[test]
fn a_missing_lock_file_means_the_run_is_dead() {
    let dir = tempfile::tempdir().unwrap();
    let mut owner = store(&dir);
    let live = owner.begin_run("p", "kiln.yml").unwrap();
    drop(live);
    std::fs::remove_file(dir.path().join(".kiln/runs/1.lock")).unwrap();
    assert_eq!(
        store(&dir).list_runs(1).unwrap()[0].status,
        RunStatus::Interrupted
    );
}

#[test]
fn safe_file_names() {
    for (name, expected) in [
        ("build", "build"),
        ("test (shard=1)", "test-shard-1"),
        ("test (os=linux, node=18)", "test-os-linux-node-18"),
        ("cargo build --release", "cargo-build-release"),
        ("../../etc/passwd", "etc-passwd"),
        ("..", "step"),
        (".hidden", "hidden"),
        ("ünïcode ✓", "n-code"),
        ("", "step"),
    ] {
        assert_eq!(safe_file_name(name, "step"), expected, "{name:?}");
    }
    assert_eq!(safe_file_name(&"x".repeat(200), "step").len(), 60);
}

#[test]
fn log_writer_separates_colliding_names_and_appends_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut logs = LogWriter::new(root, 7, [(0, "a b"), (1, "a-b")]);
    let first = logs.open_step(0, 0, "echo hi", 1).unwrap();
    assert_eq!(first, std::path::Path::new("logs/7/a-b/01-echo-hi.log"));
    logs.write_line(0, 0, "hi").unwrap();
    logs.close_step(0, 0).unwrap();
    let other = logs.open_step(1, 1, "x", 1).unwrap();
    assert_eq!(other, std::path::Path::new("logs/7/a-b-1/02-x.log"));
    logs.open_step(0, 0, "echo hi", 2).unwrap();
    logs.write_line(0, 0, "hi again").unwrap();
    logs.close_all().unwrap();
    assert_eq!(
        std::fs::read_to_string(root.join(&first)).unwrap(),
        "hi\n--- attempt 2 ---\nhi again\n"
    );
}

#[test]
fn log_writer_creates_no_file_for_a_silent_step() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut logs = LogWriter::new(root, 3, [(0, "quiet")]);
    let path = logs.open_step(0, 0, "true", 1).unwrap();
    logs.close_step(0, 0).unwrap();
    assert!(!root.join(&path).exists());
    assert!(!root.join("logs/3/quiet").exists());
}

#[test]
fn a_batch_is_invisible_until_committed_and_finish_run_commits_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(&dir);
    let live = store.begin_run("p", "kiln.yml").unwrap();
    let run = live.id();
    store.begin_batch().unwrap();
    // Nested use is harmless: add_jobs runs in a savepoint.
    store.begin_batch().unwrap();
    store.add_jobs(run, [(0, "build")]).unwrap();
    store.job_started(run, 0, 1).unwrap();
    let reader = self::store(&dir);
    assert_eq!(reader.run_details(run).unwrap().jobs.len(), 0);
    store.commit_batch().unwrap();
    assert_eq!(reader.run_details(run).unwrap().jobs[0].attempts, 1);

    // A run finished inside a batch is durable before its lock goes.
    store.begin_batch().unwrap();
    store
        .job_finished(
            run,
            JobEnd {
                job: 0,
                result: "success",
                attempts: 1,
                duration: Duration::from_millis(3),
                reason: None,
            },
        )
        .unwrap();
    store
        .finish_run(live, RunStatus::Success, Duration::from_millis(5))
        .unwrap();
    let details = reader.run_details(run).unwrap();
    assert_eq!(details.run.status, RunStatus::Success);
    assert_eq!(details.jobs[0].result.as_deref(), Some("success"));
    // Nothing left open.
    store.commit_batch().unwrap();
}

/// Every column of the rows a run wrote, times aside.
fn rows_without_times(store: &Store) -> Vec<String> {
    let queries = [
        "SELECT job, name, result, attempts, started_ms IS NOT NULL, finished_ms IS NOT NULL,
                duration_ms, reason FROM jobs ORDER BY job",
        "SELECT job, attempt, started_ms IS NOT NULL, finished_ms IS NOT NULL, result, reason,
                retry_delay_ms FROM attempts ORDER BY job, attempt",
        "SELECT job, step, attempt, name, result, exit_code, started_ms IS NOT NULL,
                duration_ms, log FROM steps ORDER BY job, step, attempt",
    ];
    let mut rows = Vec::new();
    for sql in queries {
        let mut statement = store.conn.prepare(sql).unwrap();
        let columns = statement.column_count();
        let mut found = statement.query([]).unwrap();
        while let Some(row) = found.next().unwrap() {
            let values: Vec<String> = (0..columns)
                .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                .collect();
            rows.push(values.join(" | "));
        }
    }
    rows
}

#[test]
fn job_ran_and_step_ran_write_what_the_separate_calls_write() {
    let step = StepStart {
        job: 0,
        step: 0,
        attempt: 1,
        name: "make",
        log: Some(std::path::Path::new("logs/1/build/01-make.log")),
    };
    let step_end = StepEnd {
        job: 0,
        step: 0,
        attempt: 1,
        result: "success",
        exit_code: Some(0),
        duration: Duration::from_millis(7),
    };
    let job_end = JobEnd {
        job: 0,
        result: "success",
        attempts: 1,
        duration: Duration::from_millis(9),
        reason: None,
    };
    let record = |combined: bool| {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(&dir);
        let live = store.begin_run("p", "kiln.yml").unwrap();
        store.add_jobs(live.id(), [(0, "build")]).unwrap();
        if combined {
            store.step_ran(live.id(), step, step_end).unwrap();
            store.job_ran(live.id(), job_end).unwrap();
        } else {
            store.job_started(live.id(), 0, 1).unwrap();
            store.step_started(live.id(), step).unwrap();
            store.step_finished(live.id(), step_end).unwrap();
            store.job_finished(live.id(), job_end).unwrap();
        }
        store
            .finish_run(live, RunStatus::Success, Duration::from_millis(10))
            .unwrap();
        rows_without_times(&store)
    };
    let separate = record(false);
    assert_eq!(separate.len(), 3, "{separate:#?}");
    assert_eq!(record(true), separate);
}

/// Closing does not fold the WAL into `kiln.db` (the next run appends to
/// it); what it holds is still what a new connection reads.
#[test]
fn the_wal_outlives_a_closed_store_and_is_read_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(&dir);
    let run = store.begin_run("ship", "kiln.yml").unwrap().id();
    store.add_jobs(run, [(0, "build")]).unwrap();
    drop(store);
    let wal = dir.path().join(".kiln/kiln.db-wal");
    let kept = wal.metadata().map(|m| m.len()).unwrap_or(0);
    assert!(kept > 0, "closing checkpointed the WAL away");
    let store = self::store(&dir);
    let limit: i64 = store
        .conn
        .query_row("PRAGMA journal_size_limit", [], |row| row.get(0))
        .unwrap();
    assert_eq!(limit, WAL_SIZE_LIMIT);
    let jobs: i64 = store
        .conn
        .query_row("SELECT count(*) FROM jobs WHERE run = ?1", [run], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(jobs, 1);
}
