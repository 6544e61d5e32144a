//! kiln's state under `.kiln/`: run records in SQLite (`kiln.db`), run log
//! files (`logs/<run>/<job>/<step>.log`), run liveness locks
//! (`runs/<id>.lock`), and the content-addressed blob store ([`cas`]) with
//! deterministic directory archives ([`archive`]) that artifacts and caches
//! are built on.
//!
//! This crate owns the on-disk layout and nothing else: it does not know the
//! engine's event types (the CLI translates events into the calls here), so
//! the engine may later depend on this crate for artifacts and caches
//! without a cycle. It never prints.
//!
//! ```no_run
//! # fn main() -> Result<(), kiln_store::StoreError> {
//! let mut store = kiln_store::Store::open(std::path::Path::new(".kiln"))?;
//! let live = store.begin_run("ship", "kiln.yml")?;
//! // … record jobs and steps while the engine runs …
//! store.finish_run(live, kiln_store::RunStatus::Success, std::time::Duration::from_secs(3))?;
//! for run in store.list_runs(20)? {
//!     println!("{} {} {}", run.id, run.pipeline, run.status);
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod archive;
pub mod artifacts;
pub mod cas;
mod error;
mod lock;
mod logs;
mod query;
mod record;
mod schema;
mod status;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension};

pub use error::StoreError;
pub use logs::{LogWriter, safe_file_name};
pub use query::{JobRecord, RunDetails, RunSummary, StepRecord};
pub use record::{JobEnd, LiveRun, StepEnd, StepStart};
pub use status::RunStatus;

use error::Result;

/// A run's number: the id users type (`kiln runs show 7`).
pub type RunId = i64;

/// File name of the database inside the state directory.
pub const DATABASE_FILE: &str = "kiln.db";

/// How long a writer waits for another kiln process holding the database.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes the WAL is cut back to when a checkpoint resets it (`connect`).
const WAL_SIZE_LIMIT: i64 = 4 << 20;

/// An open `.kiln/` state directory.
///
/// Cheap to open; every [`Store::open`] also marks runs whose process died
/// (SIGKILL, power loss) as [`RunStatus::Interrupted`].
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    root: PathBuf,
    db_path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the state directory `dir` — normally
    /// `.kiln` beside the pipeline file — migrates its database to the
    /// current schema and sweeps dead runs to `interrupted`.
    pub fn open(dir: &Path) -> Result<Self> {
        for sub in [dir.to_path_buf(), dir.join("runs"), dir.join("logs")] {
            std::fs::create_dir_all(&sub).map_err(|source| StoreError::Io { path: sub, source })?;
        }
        let (conn, db_path) = connect(dir)?;
        let mut store = Self {
            conn,
            root: dir.to_path_buf(),
            db_path,
        };
        store.sweep_interrupted()?;
        // A kiln killed mid-upload leaves its temp file behind; every start
        // sweeps those (live uploads hold a lock and are left alone).
        if dir.join(cas::TMP_DIR).is_dir()
            && let Err(err) = cas::BlobStore::open(dir)
        {
            tracing::warn!(%err, "cannot sweep temp files of interrupted uploads");
        }
        Ok(store)
    }

    /// The state directory this store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory holding one run's step logs: `<root>/logs/<run>`.
    pub fn log_dir(&self, run: RunId) -> PathBuf {
        self.root.join("logs").join(run.to_string())
    }

    /// Lock file proving run `run` is live: `<root>/runs/<run>.lock`.
    fn lock_path(&self, run: RunId) -> PathBuf {
        self.root.join("runs").join(format!("{run}.lock"))
    }

    /// Marks every `running` run whose liveness lock nobody holds as
    /// `interrupted`, along with its unfinished jobs and steps.
    fn sweep_interrupted(&mut self) -> Result<()> {
        let running: Vec<RunId> = {
            let mut stmt = self
                .conn
                .prepare("SELECT id FROM runs WHERE status = 'running'")
                .map_err(|e| self.db(e))?;
            stmt.query_map([], |row| row.get(0))
                .and_then(Iterator::collect)
                .map_err(|e| self.db(e))?
        };
        for run in running {
            if lock::probe(&self.lock_path(run))? == lock::Probe::Dead {
                self.mark_interrupted(run)?;
            }
        }
        Ok(())
    }

    fn mark_interrupted(&mut self, run: RunId) -> Result<()> {
        let now = now_ms();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| db_err(&self.db_path, e))?;
        // Conditional on `running`: the owner may have finished normally
        // between our read and our probe.
        let changed = tx
            .execute(
                "UPDATE runs SET status = 'interrupted', finished_ms = ?2,
                        duration_ms = ?2 - started_ms
                 WHERE id = ?1 AND status = 'running'",
                (run, now),
            )
            .and_then(|changed| {
                if changed > 0 {
                    tx.execute(
                        "UPDATE jobs SET result = 'interrupted', finished_ms = ?2
                         WHERE run = ?1 AND result IS NULL AND attempts > 0",
                        (run, now),
                    )?;
                    tx.execute(
                        "UPDATE steps SET result = 'interrupted'
                         WHERE run = ?1 AND result IS NULL",
                        [run],
                    )?;
                }
                Ok(changed)
            })
            .map_err(|e| db_err(&self.db_path, e))?;
        tx.commit().map_err(|e| db_err(&self.db_path, e))?;
        if changed > 0 {
            tracing::info!(run, "marked dead run as interrupted");
            let _ = std::fs::remove_file(self.lock_path(run));
        }
        Ok(())
    }

    fn db(&self, source: rusqlite::Error) -> StoreError {
        db_err(&self.db_path, source)
    }

    /// Looks up one run's summary row.
    fn summary(&self, run: RunId) -> Result<Option<RunSummary>> {
        self.conn
            .query_row(
                &format!("{} WHERE id = ?1", query::SUMMARY_SELECT),
                [run],
                query::summary_from_row,
            )
            .optional()
            .map_err(|e| self.db(e))?
            .transpose()
    }
}

/// A connection to the database at `path` with the settings every
/// connection to `kiln.db` shares, whichever crate opens it (the store's,
/// the deploy journal's): they must agree, as each may be the one that
/// closes last.
pub fn open_database(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL lets `kiln runs list` read while a run writes; NORMAL sync is
    // durable across process crashes, which is the failure we care about.
    conn.query_row("PRAGMA journal_mode = WAL", [], |row| {
        row.get::<_, String>(0)
    })?;
    conn.execute_batch("PRAGMA synchronous = NORMAL;")?;
    // The last connection to close would copy the WAL into the database,
    // sync it and delete the WAL, and the next run would create and sync a
    // new one: a third of the time a run spends after its last step, for
    // a copy SQLite makes anyway once the WAL reaches 1,000 pages. So the
    // WAL stays between runs (`kiln.db-wal`, `kiln.db-shm`, part of the
    // database like `kiln.db`), kept to 4 MiB when it is reset.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    Ok(conn)
}

/// Opens `kiln.db` in `dir` (WAL, busy timeout, foreign keys) and migrates
/// it to the current schema. Shared by [`Store`] and
/// [`artifacts::Artifacts`], which hold their own connections.
fn connect(dir: &Path) -> Result<(Connection, PathBuf)> {
    let db_path = dir.join(DATABASE_FILE);
    let db = |source| StoreError::Database {
        path: db_path.clone(),
        source,
    };
    let mut conn = open_database(&db_path).map_err(db)?;
    conn.execute_batch("PRAGMA foreign_keys = ON;")
        .map_err(db)?;
    let found = schema::version(&conn).map_err(db)?;
    if found > schema::latest() {
        return Err(StoreError::NewerSchema {
            path: db_path,
            found,
            supported: schema::latest(),
        });
    }
    schema::migrate(&mut conn, found).map_err(db)?;
    Ok((conn, db_path))
}

fn db_err(path: &Path, source: rusqlite::Error) -> StoreError {
    StoreError::Database {
        path: path.to_owned(),
        source,
    }
}

/// Milliseconds since the Unix epoch, the unit of every timestamp column.
fn now_ms() -> i64 {
    to_ms(SystemTime::now())
}

fn to_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
