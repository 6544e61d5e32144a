//! The SQLite schema and its migrations, versioned with `PRAGMA user_version`.
//!
//! A released migration is never edited: a schema change appends a new entry
//! to [`MIGRATIONS`], so every older database upgrades step by step.

use rusqlite::Connection;

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // v1: runs, jobs, job attempts, step attempts.
    "
    CREATE TABLE runs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        pipeline    TEXT    NOT NULL,
        file        TEXT    NOT NULL,
        started_ms  INTEGER NOT NULL,
        finished_ms INTEGER,
        status      TEXT    NOT NULL
            CHECK (status IN ('running', 'success', 'failed', 'cancelled', 'interrupted')),
        duration_ms INTEGER
    );
    CREATE TABLE jobs (
        run         INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        job         INTEGER NOT NULL,
        name        TEXT    NOT NULL,
        result      TEXT,
        attempts    INTEGER NOT NULL DEFAULT 0,
        started_ms  INTEGER,
        finished_ms INTEGER,
        duration_ms INTEGER,
        reason      TEXT,
        PRIMARY KEY (run, job)
    );
    CREATE TABLE attempts (
        run         INTEGER NOT NULL,
        job         INTEGER NOT NULL,
        attempt     INTEGER NOT NULL,
        started_ms  INTEGER NOT NULL,
        finished_ms INTEGER,
        result      TEXT,
        reason      TEXT,
        retry_delay_ms INTEGER,
        PRIMARY KEY (run, job, attempt),
        FOREIGN KEY (run, job) REFERENCES jobs(run, job) ON DELETE CASCADE
    );
    CREATE TABLE steps (
        run         INTEGER NOT NULL,
        job         INTEGER NOT NULL,
        step        INTEGER NOT NULL,
        attempt     INTEGER NOT NULL,
        name        TEXT    NOT NULL,
        result      TEXT,
        exit_code   INTEGER,
        started_ms  INTEGER NOT NULL,
        duration_ms INTEGER,
        log         TEXT,
        PRIMARY KEY (run, job, step, attempt),
        FOREIGN KEY (run, job) REFERENCES jobs(run, job) ON DELETE CASCADE
    );
    CREATE INDEX runs_by_status ON runs(status);
    ",
    // v2: artifacts, caches, pins and the references of running jobs.
    // Digests are 64 lowercase hex characters; times are Unix milliseconds.
    "
    CREATE TABLE artifacts (
        run         INTEGER NOT NULL,
        job         TEXT    NOT NULL,
        name        TEXT    NOT NULL,
        kind        TEXT    NOT NULL CHECK (kind IN ('file', 'tree')),
        path        TEXT    NOT NULL,
        digest      TEXT    NOT NULL,
        size        INTEGER NOT NULL,
        created_ms  INTEGER NOT NULL,
        accessed_ms INTEGER NOT NULL,
        PRIMARY KEY (run, job, name)
    );
    CREATE INDEX artifacts_by_digest ON artifacts(digest);
    CREATE INDEX artifacts_by_size ON artifacts(size);
    CREATE TABLE caches (
        key         TEXT    PRIMARY KEY,
        pipeline    TEXT    NOT NULL,
        run         INTEGER NOT NULL,
        created_ms  INTEGER NOT NULL,
        accessed_ms INTEGER NOT NULL
    );
    CREATE TABLE cache_paths (
        key         TEXT    NOT NULL REFERENCES caches(key) ON DELETE CASCADE,
        idx         INTEGER NOT NULL,
        path        TEXT    NOT NULL,
        kind        TEXT    NOT NULL CHECK (kind IN ('file', 'tree')),
        digest      TEXT    NOT NULL,
        size        INTEGER NOT NULL,
        PRIMARY KEY (key, idx)
    );
    CREATE INDEX cache_paths_by_digest ON cache_paths(digest);
    CREATE INDEX cache_paths_by_size ON cache_paths(size);
    CREATE TABLE pins (
        digest      TEXT    PRIMARY KEY,
        pinned_ms   INTEGER NOT NULL
    );
    CREATE TABLE refs (
        digest      TEXT    NOT NULL,
        run         INTEGER NOT NULL,
        created_ms  INTEGER NOT NULL,
        PRIMARY KEY (digest, run)
    );
    ",
];

/// The schema version this build writes.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Reads `PRAGMA user_version`.
pub(crate) fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// Applies every migration after `from`, each in its own transaction so a
/// crash mid-upgrade leaves a consistent (older) schema behind.
pub(crate) fn migrate(conn: &mut Connection, from: i64) -> rusqlite::Result<()> {
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        if version(&tx)? > index as i64 {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
