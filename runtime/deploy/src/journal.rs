//! The durable rollout record in `.kiln/kiln.db`, in tables of its own
//! (`deploy_*`, created here, versioned by `deploy_schema`, so kiln-store's
//! migrations stay its own): every rollout with its spec and status, every
//! decision and observation, every instance with its handle, approval
//! gates, and each service's stable version and proxy.
//!
//! Approvals cross processes through it: the controller writes a `pending`
//! gate and polls it; `kiln approve`/`kiln reject` (any process) update it.
//! SQLite in WAL mode makes both sides durable and safe at once.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::contract::{Approval, ApprovalAnswer};
use crate::error::{DeployError, Result};
use crate::platform::{Instance, InstanceHandle};
use crate::spec::{RolloutSettings, ServiceSpec};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deploy_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS deploy_rollouts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    service     TEXT    NOT NULL,
    run         INTEGER NOT NULL,
    candidate   TEXT    NOT NULL,
    stable      TEXT,
    spec        TEXT    NOT NULL,
    settings    TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN
        ('running', 'promoting', 'rolling-back', 'promoted', 'rolled-back')),
    reason      TEXT,
    pid         INTEGER NOT NULL,
    started_ms  INTEGER NOT NULL,
    finished_ms INTEGER
);
CREATE INDEX IF NOT EXISTS deploy_rollouts_by_service ON deploy_rollouts(service, id);
CREATE TABLE IF NOT EXISTS deploy_events (
    rollout INTEGER NOT NULL REFERENCES deploy_rollouts(id),
    seq     INTEGER NOT NULL,
    at_ms   INTEGER NOT NULL,
    kind    TEXT    NOT NULL,
    detail  TEXT    NOT NULL,
    PRIMARY KEY (rollout, seq)
);
CREATE TABLE IF NOT EXISTS deploy_instances (
    name       TEXT PRIMARY KEY,
    service    TEXT    NOT NULL,
    version    TEXT    NOT NULL,
    rollout    INTEGER NOT NULL,
    instance   TEXT,
    state      TEXT    NOT NULL CHECK (state IN ('starting', 'running', 'stopped')),
    started_ms INTEGER NOT NULL,
    stopped_ms INTEGER
);
CREATE TABLE IF NOT EXISTS deploy_approvals (
    rollout     INTEGER NOT NULL,
    run         INTEGER NOT NULL,
    gate        TEXT    NOT NULL,
    answer      TEXT    NOT NULL CHECK (answer IN ('pending', 'approved', 'rejected')),
    asked_ms    INTEGER NOT NULL,
    answered_ms INTEGER,
    note        TEXT,
    PRIMARY KEY (rollout, gate)
);
CREATE TABLE IF NOT EXISTS deploy_services (
    service     TEXT PRIMARY KEY,
    stable      TEXT,
    stable_spec TEXT,
    listen      TEXT,
    proxy       TEXT
);
";

/// A rollout as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolloutRecord {
    /// Rollout id.
    pub id: i64,
    /// Service.
    pub service: String,
    /// The run that started it.
    pub run: i64,
    /// Version rolled out.
    pub candidate: String,
    /// Version serving before.
    pub stable: Option<String>,
    /// `running`, `promoting`, `rolling-back`, `promoted`, `rolled-back`.
    pub status: String,
    /// Why it was rolled back.
    pub reason: Option<String>,
    /// The controller's pid.
    pub pid: i64,
    /// Start, ms since the epoch.
    pub started_ms: i64,
    /// End, ms since the epoch.
    pub finished_ms: Option<i64>,
    /// What it deployed.
    #[serde(skip)]
    pub spec: ServiceSpec,
    /// How.
    #[serde(skip)]
    pub settings: RolloutSettings,
}

/// A service's current state.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRecord {
    /// Serving version.
    pub stable: Option<String>,
    /// Its spec (to restore capacity on rollback).
    pub stable_spec: Option<ServiceSpec>,
    /// Its proxy process, if one was started.
    pub proxy: Option<ProxyRecord>,
}

/// A proxy process as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProxyRecord {
    /// Listener.
    pub listen: std::net::SocketAddr,
    /// Control socket.
    pub socket: PathBuf,
    /// The process.
    pub handle: InstanceHandle,
}

/// The journal: one connection, shared by the controller's task.
#[derive(Debug)]
pub struct Journal {
    conn: Mutex<Connection>,
    path: PathBuf,
    root: PathBuf,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("journal records serialise")
}

impl Journal {
    /// Opens the journal in `state_dir` (normally `.kiln`), creating its
    /// tables, on a connection with the settings every connection to
    /// `kiln.db` shares ([`kiln_store::open_database`]).
    pub fn open(state_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(state_dir.join("deploy"))
            .map_err(|e| DeployError::io("create", state_dir.join("deploy"), e))?;
        let path = state_dir.join("kiln.db");
        let db = |source| DeployError::Journal {
            path: path.clone(),
            source,
        };
        let conn = kiln_store::open_database(&path).map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        let version: Option<i64> = conn
            .query_row("SELECT version FROM deploy_schema", [], |r| r.get(0))
            .optional()
            .map_err(db)?;
        if version.is_none() {
            conn.execute("INSERT INTO deploy_schema (version) VALUES (1)", [])
                .map_err(db)?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
            path,
            root: state_dir.to_owned(),
        })
    }

    /// `<state>/deploy`: instance logs, proxy sockets, service locks.
    pub fn deploy_dir(&self) -> PathBuf {
        self.root.join("deploy")
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self.conn.lock().expect("not poisoned");
        f(&conn).map_err(|source| DeployError::Journal {
            path: self.path.clone(),
            source,
        })
    }

    /// Records a new rollout in `running`.
    pub fn begin(
        &self,
        spec: &ServiceSpec,
        settings: &RolloutSettings,
        stable: Option<&str>,
    ) -> Result<i64> {
        self.with(|c| {
            c.execute(
                "INSERT INTO deploy_rollouts (service, run, candidate, stable, spec, settings, status, pid, started_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7, ?8)",
                params![
                    spec.service,
                    settings.run,
                    spec.version,
                    stable,
                    json(spec),
                    json(settings),
                    i64::from(std::process::id()),
                    now_ms()
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Moves a rollout to `status` (final statuses also stamp the end).
    pub fn set_status(&self, rollout: i64, status: &str, reason: Option<&str>) -> Result<()> {
        let finished = matches!(status, "promoted" | "rolled-back").then(now_ms);
        self.with(|c| {
            c.execute(
                "UPDATE deploy_rollouts SET status = ?2, reason = COALESCE(?3, reason),
                        finished_ms = COALESCE(?4, finished_ms), pid = ?5 WHERE id = ?1",
                params![
                    rollout,
                    status,
                    reason,
                    finished,
                    i64::from(std::process::id())
                ],
            )
            .map(drop)
        })
    }

    /// Appends a decision, observation or effect to the rollout's record.
    pub fn event(&self, rollout: i64, kind: &str, detail: &serde_json::Value) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO deploy_events (rollout, seq, at_ms, kind, detail)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM deploy_events WHERE rollout = ?1), ?2, ?3, ?4)",
                params![rollout, now_ms(), kind, detail.to_string()],
            )
            .map(drop)
        })
    }

    /// A rollout's events in order: `(kind, detail)`.
    pub fn events(&self, rollout: i64) -> Result<Vec<(String, serde_json::Value)>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT kind, detail FROM deploy_events WHERE rollout = ?1 ORDER BY seq",
            )?;
            stmt.query_map([rollout], |r| {
                let detail: String = r.get(1)?;
                Ok((r.get(0)?, serde_json::from_str(&detail).unwrap_or_default()))
            })?
            .collect()
        })
    }

    /// Records an instance about to start, before it exists: a crash
    /// between here and [`Journal::instance_started`] leaves a `starting`
    /// row that tells a resume to look for strays.
    pub fn instance_starting(
        &self,
        rollout: i64,
        service: &str,
        version: &str,
        name: &str,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO deploy_instances (name, service, version, rollout, state, started_ms)
                 VALUES (?1, ?2, ?3, ?4, 'starting', ?5)",
                params![name, service, version, rollout, now_ms()],
            )
            .map(drop)
        })
    }

    /// Records a started instance's handle.
    pub fn instance_started(&self, instance: &Instance) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE deploy_instances SET state = 'running', instance = ?2 WHERE name = ?1",
                params![instance.name, json(instance)],
            )
            .map(drop)
        })
    }

    /// Records an instance as stopped.
    pub fn instance_stopped(&self, name: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE deploy_instances SET state = 'stopped', stopped_ms = ?2 WHERE name = ?1",
                params![name, now_ms()],
            )
            .map(drop)
        })
    }

    /// Running instances of `service` (all versions), oldest first.
    pub fn live_instances(&self, service: &str) -> Result<Vec<Instance>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT instance FROM deploy_instances
                 WHERE service = ?1 AND state = 'running' AND instance IS NOT NULL ORDER BY started_ms, name",
            )?;
            let rows: Vec<String> = stmt.query_map([service], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
            Ok(rows.iter().filter_map(|t| serde_json::from_str(t).ok()).collect())
        })
    }

    /// Names of instances of `service` recorded as `starting` (a crash
    /// came between spawn and record).
    pub fn starting_instances(&self, service: &str) -> Result<Vec<(String, i64)>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT name, rollout FROM deploy_instances WHERE service = ?1 AND state = 'starting'",
            )?;
            stmt.query_map([service], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
    }

    /// How many instances the rollout has started so far (for names).
    pub fn instances_started_by(&self, rollout: i64) -> Result<u32> {
        self.with(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM deploy_instances WHERE rollout = ?1",
                [rollout],
                |r| r.get(0),
            )
        })
    }

    /// The service's current state.
    pub fn service(&self, service: &str) -> Result<ServiceRecord> {
        let row: Option<(Option<String>, Option<String>, Option<String>)> = self.with(|c| {
            c.query_row(
                "SELECT stable, stable_spec, proxy FROM deploy_services WHERE service = ?1",
                [service],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
        })?;
        let (stable, spec, proxy) = row.unwrap_or_default();
        Ok(ServiceRecord {
            stable,
            stable_spec: spec.and_then(|s| serde_json::from_str(&s).ok()),
            proxy: proxy.and_then(|s| serde_json::from_str(&s).ok()),
        })
    }

    /// Every service with a record.
    pub fn services(&self) -> Result<Vec<String>> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT service FROM deploy_services ORDER BY service")?;
            stmt.query_map([], |r| r.get(0))?.collect()
        })
    }

    /// Makes `spec`'s version the service's stable one (`None`: nothing serves).
    pub fn set_stable(&self, service: &str, spec: Option<&ServiceSpec>) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO deploy_services (service, stable, stable_spec) VALUES (?1, ?2, ?3)
                 ON CONFLICT(service) DO UPDATE SET stable = ?2, stable_spec = ?3",
                params![service, spec.map(|s| s.version.clone()), spec.map(json)],
            )
            .map(drop)
        })
    }

    /// Records the service's proxy process.
    pub fn set_proxy(&self, service: &str, proxy: Option<&ProxyRecord>) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO deploy_services (service, proxy) VALUES (?1, ?2)
                 ON CONFLICT(service) DO UPDATE SET proxy = ?2",
                params![service, proxy.map(json)],
            )
            .map(drop)
        })
    }

    /// Opens approval gate `gate` of `rollout` as `pending` (again, if it
    /// was asked before).
    pub fn ask(&self, rollout: i64, run: i64, gate: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO deploy_approvals (rollout, run, gate, answer, asked_ms)
                 VALUES (?1, ?2, ?3, 'pending', ?4)",
                params![rollout, run, gate, now_ms()],
            )
            .map(drop)
        })
    }

    /// Answers the pending gate `gate` of run `run`. Errors name the gates
    /// that are pending, so a typo is easy to fix.
    pub fn answer(&self, run: i64, gate: &str, answer: ApprovalAnswer, note: &str) -> Result<()> {
        let text = answer_text(answer);
        let changed = self.with(|c| {
            c.execute(
                "UPDATE deploy_approvals SET answer = ?3, answered_ms = ?4, note = ?5
                 WHERE run = ?1 AND gate = ?2 AND answer = 'pending'",
                params![run, gate, text, now_ms(), note],
            )
        })?;
        if changed > 0 {
            return Ok(());
        }
        let pending: Vec<String> = self.with(|c| {
            let mut stmt = c.prepare("SELECT gate FROM deploy_approvals WHERE run = ?1 AND answer = 'pending' ORDER BY gate")?;
            stmt.query_map([run], |r| r.get(0))?.collect()
        })?;
        Err(DeployError::NotFound(if pending.is_empty() {
            format!("run {run} has no approval gate waiting for an answer")
        } else {
            format!(
                "run {run} has no pending gate `{gate}`; waiting: `{}`",
                pending.join("`, `")
            )
        }))
    }

    /// Sets a gate's answer from the controller's side (a timeout).
    pub fn settle(
        &self,
        rollout: i64,
        gate: &str,
        answer: ApprovalAnswer,
        note: &str,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE deploy_approvals SET answer = ?3, answered_ms = ?4, note = ?5
                 WHERE rollout = ?1 AND gate = ?2 AND answer = 'pending'",
                params![rollout, gate, answer_text(answer), now_ms(), note],
            )
            .map(drop)
        })
    }

    /// Every gate of `rollout` with its answer so far, in asking order.
    pub fn approvals(&self, rollout: i64) -> Result<Vec<Approval>> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT gate, answer FROM deploy_approvals WHERE rollout = ?1 ORDER BY asked_ms, gate")?;
            stmt.query_map([rollout], |r| {
                let answer: String = r.get(1)?;
                Ok(Approval {
                    name: r.get(0)?,
                    answer: match answer.as_str() {
                        "approved" => ApprovalAnswer::Approved,
                        "rejected" => ApprovalAnswer::Rejected,
                        _ => ApprovalAnswer::Pending,
                    },
                })
            })?
            .collect()
        })
    }

    /// Rollouts not in a final state (`service` = `None`: of every service).
    pub fn unfinished(&self, service: Option<&str>) -> Result<Vec<RolloutRecord>> {
        self.rollouts(
            "WHERE status IN ('running', 'promoting', 'rolling-back') AND (?1 IS NULL OR service = ?1) ORDER BY id",
            service,
        )
    }

    /// Every rollout of `service`, newest first.
    pub fn history(&self, service: &str) -> Result<Vec<RolloutRecord>> {
        self.rollouts("WHERE service = ?1 ORDER BY id DESC", Some(service))
    }

    fn rollouts(&self, clause: &str, service: Option<&str>) -> Result<Vec<RolloutRecord>> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT id, service, run, candidate, stable, status, reason, pid, started_ms, finished_ms, spec, settings
                 FROM deploy_rollouts {clause}"
            ))?;
            let rows = stmt.query_map([service], |r| {
                let spec: String = r.get(10)?;
                let settings: String = r.get(11)?;
                Ok((
                    RolloutRecord {
                        id: r.get(0)?,
                        service: r.get(1)?,
                        run: r.get(2)?,
                        candidate: r.get(3)?,
                        stable: r.get(4)?,
                        status: r.get(5)?,
                        reason: r.get(6)?,
                        pid: r.get(7)?,
                        started_ms: r.get(8)?,
                        finished_ms: r.get(9)?,
                        spec: placeholder_spec(),
                        settings: placeholder_settings(),
                    },
                    spec,
                    settings,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (mut rec, spec, settings) = row?;
                // A row this build cannot read keeps placeholders rather
                // than hiding the rollout from history.
                if let Ok(s) = serde_json::from_str(&spec) {
                    rec.spec = s;
                }
                if let Ok(s) = serde_json::from_str(&settings) {
                    rec.settings = s;
                }
                out.push(rec);
            }
            Ok(out)
        })
    }
}

fn answer_text(answer: ApprovalAnswer) -> &'static str {
    match answer {
        ApprovalAnswer::Pending => "pending",
        ApprovalAnswer::Approved => "approved",
        ApprovalAnswer::Rejected => "rejected",
    }
}

fn placeholder_spec() -> ServiceSpec {
    ServiceSpec {
        service: String::new(),
        version: String::new(),
        run: crate::spec::RunSpec::Command(String::new()),
        port: None,
        replicas: 0,
        env: Vec::new(),
        workdir: PathBuf::new(),
        readiness: crate::spec::Readiness {
            path: None,
            timeout: Duration::ZERO,
        },
        health_params: Vec::new(),
    }
}

fn placeholder_settings() -> RolloutSettings {
    RolloutSettings {
        run: 0,
        strategy: String::new(),
        strategy_params: Vec::new(),
        health: None,
        health_digest: None,
        manual_approval: false,
        approval_timeout: Duration::ZERO,
        listen: "127.0.0.1:0".parse().expect("valid"),
        sticky: None,
    }
}

/// One rollout per service at a time, across processes: an exclusive
/// `flock` on `deploy/<service>.lock`, released when the holder dies
/// however it dies (SIGKILL included) — so a resume can tell a crashed
/// controller from a live one.
#[derive(Debug)]
pub struct ServiceLock {
    _file: std::fs::File,
}

impl ServiceLock {
    /// Takes the lock of `service`, or says who holds it.
    pub fn acquire(journal: &Journal, service: &str) -> Result<Self> {
        use rustix::fs::{FlockOperation, flock};
        let path = journal.deploy_dir().join(format!("{service}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| DeployError::io("open", &path, e))?;
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            let pid = journal
                .unfinished(Some(service))?
                .last()
                .map_or(0, |r| r.pid);
            return Err(DeployError::Busy {
                service: service.to_owned(),
                pid,
            });
        }
        Ok(Self { _file: file })
    }
}
