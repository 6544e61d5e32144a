//! Retention: which artifacts and caches to drop, and which blobs go with
//! them.
//!
//! Policies (each optional, combined): entries older than `max-age`;
//! entries not used for `max-idle`; artifacts beyond the newest
//! `keep-runs` runs of their pipeline (and caches beyond the newest
//! `keep-runs` entries of their pipeline); then, while the blobs left
//! exceed `max-size`, the least recently used entries. Never removed, by
//! any policy: entries whose blob is pinned, artifacts of a live run, and
//! entries whose blobs a live run references (it downloaded them). A blob
//! is deleted when nothing kept, pinned or live refers to it; a blob no
//! entry ever named is deleted once it is older than [`ORPHAN_GRACE`].
//!
//! [`Artifacts::gc`] computes the plan and removes the dropped entries in
//! one SQLite write transaction, then deletes the blob files in a second
//! one, skipping any blob taken up again in between; no download or upload
//! interleaves with either (see the module doc of [`crate::artifacts`]).

mod policy;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use rusqlite::TransactionBehavior;

use super::{Artifacts, Result};
use crate::RunId;
use crate::cas::Digest;

pub use policy::{CONFIG_FILE, Policy, human_duration, human_size, parse_duration, parse_size};

/// An index entry retention considers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// Artifact `name` of `job` in `run`.
    Artifact {
        /// Run.
        run: RunId,
        /// Job.
        job: String,
        /// Name.
        name: String,
    },
    /// The cache entry with this key.
    Cache {
        /// Key.
        key: String,
    },
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Artifact { run, job, name } => {
                write!(f, "artifact `{name}` of run {run} (job `{job}`)")
            }
            Subject::Cache { key } => write!(f, "cache `{key}`"),
        }
    }
}

/// Why an entry stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// Its blob is pinned.
    Pinned,
    /// A live run uploaded it or references its blob.
    InUse(RunId),
    /// No policy selects it.
    Policy,
}

/// Why an entry goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drop {
    /// Created longer ago than `max-age`.
    Age(Duration),
    /// Not used for longer than `max-idle`.
    Idle(Duration),
    /// Beyond the newest `keep-runs` of its pipeline.
    Count {
        /// The pipeline.
        pipeline: String,
        /// The limit.
        keep: u32,
    },
    /// The store was over `max-size`; this was least recently used.
    Size(u64),
}

impl fmt::Display for Keep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Keep::Pinned => f.write_str("pinned"),
            Keep::InUse(run) => write!(f, "in use by running run {run}"),
            Keep::Policy => f.write_str("within the retention policy"),
        }
    }
}

impl fmt::Display for Drop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drop::Age(limit) => write!(f, "older than max-age {}", human_duration(*limit)),
            Drop::Idle(limit) => write!(f, "not used for max-idle {}", human_duration(*limit)),
            Drop::Count { pipeline, keep } => {
                write!(
                    f,
                    "not among the newest {keep} runs of pipeline `{pipeline}`"
                )
            }
            Drop::Size(limit) => write!(
                f,
                "least recently used while the store is over max-size {}",
                human_size(*limit)
            ),
        }
    }
}

/// One line of the plan for an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPlan {
    /// The entry.
    pub subject: Subject,
    /// Its blobs' total size.
    pub size: u64,
    /// Keep (why) or drop (why).
    pub decision: Result<Keep, Drop>,
}

/// Why a blob is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobDrop {
    /// Only dropped entries used it.
    Unreferenced,
    /// No index entry ever used it (a left-over upload).
    Orphaned,
}

/// What a gc does (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Every entry with its decision, artifacts by run then caches.
    pub entries: Vec<EntryPlan>,
    /// Blobs deleted, with size and reason.
    pub blobs: Vec<(Digest, u64, BlobDrop)>,
    /// Bytes of blobs kept.
    pub kept_bytes: u64,
    /// Stale temp files of dead uploads removed.
    pub temp_files: usize,
}

impl Plan {
    /// Bytes freed.
    pub fn freed(&self) -> u64 {
        self.blobs.iter().map(|b| b.1).sum()
    }
}

struct Candidate {
    subject: Subject,
    pipeline: String,
    run: RunId,
    created: i64,
    accessed: i64,
    digests: Vec<(Digest, u64)>,
}

/// How long an unindexed blob is left alone: an upload commits its blob,
/// then indexes it in a second transaction, and a gc in between must not
/// take the new blob for a left-over (as git's `gc.pruneExpire` protects
/// fresh loose objects).
pub const ORPHAN_GRACE: Duration = Duration::from_secs(10 * 60);

/// Whether blob `digest` was written within [`ORPHAN_GRACE`]. A blob whose
/// age cannot be read counts as fresh: keeping it is the safe side.
fn is_fresh(blobs: &crate::cas::BlobStore, digest: &Digest) -> bool {
    std::fs::symlink_metadata(blobs.object_path(digest))
        .and_then(|m| m.modified())
        .map_or(true, |written| {
            written.elapsed().map_or(true, |age| age < ORPHAN_GRACE)
        })
}

impl Artifacts {
    /// Applies `policy`: computes the plan and, unless `dry_run`, removes
    /// the dropped entries and deletes the blobs nothing needs any more,
    /// all under the database's write lock.
    pub fn gc(&mut self, policy: &Policy, dry_run: bool) -> Result<Plan> {
        self.gc_observed(policy, dry_run, || {})
    }

    /// [`Artifacts::gc`], calling `after_index` once the index changes are
    /// committed and before any blob file is deleted: the window a crash
    /// or another kiln could fall into, which the tests use.
    pub(crate) fn gc_observed(
        &mut self,
        policy: &Policy,
        dry_run: bool,
        after_index: impl FnOnce(),
    ) -> Result<Plan> {
        let now = crate::now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let candidates = load_candidates(&tx)?;
        let pins: HashSet<Digest> = digests(&tx, "SELECT digest FROM pins")?;
        let mut live_runs = HashSet::new();
        let mut runs: Vec<RunId> = candidates.iter().map(|c| c.run).collect();
        let ref_rows: Vec<(String, RunId)> = {
            let mut stmt = tx.prepare("SELECT digest, run FROM refs")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        runs.extend(ref_rows.iter().map(|r| r.1));
        runs.sort_unstable();
        runs.dedup();
        for run in runs {
            if super::is_live(&self.root, run)? {
                live_runs.insert(run);
            }
        }
        let mut referenced: HashMap<Digest, RunId> = HashMap::new();
        for (hex, run) in &ref_rows {
            if live_runs.contains(run)
                && let Ok(d) = hex.parse()
            {
                referenced.insert(d, *run);
            }
        }

        let mut plan = Plan::default();
        let decisions = decide(policy, &candidates, &pins, &live_runs, &referenced, now);
        let mut kept: HashSet<Digest> = pins.clone();
        kept.extend(referenced.keys().copied());
        for (candidate, decision) in candidates.iter().zip(&decisions) {
            if decision.is_ok() {
                kept.extend(candidate.digests.iter().map(|d| d.0));
            }
        }
        let indexed: HashSet<Digest> = candidates
            .iter()
            .flat_map(|c| c.digests.iter().map(|d| d.0))
            .collect();
        for blob in self.blobs.blobs()? {
            if kept.contains(&blob.digest) {
                plan.kept_bytes += blob.size;
                continue;
            }
            let why = if indexed.contains(&blob.digest) {
                BlobDrop::Unreferenced
            } else if is_fresh(&self.blobs, &blob.digest) {
                // Committed by an upload that has not indexed it yet (it
                // does so right after, under the write lock we hold).
                plan.kept_bytes += blob.size;
                continue;
            } else {
                BlobDrop::Orphaned
            };
            plan.blobs.push((blob.digest, blob.size, why));
        }
        for (candidate, decision) in candidates.into_iter().zip(decisions) {
            plan.entries.push(EntryPlan {
                size: candidate.digests.iter().map(|d| d.1).sum(),
                subject: candidate.subject,
                decision,
            });
        }
        if dry_run {
            return Ok(plan);
        }
        for entry in plan.entries.iter().filter(|e| e.decision.is_err()) {
            match &entry.subject {
                Subject::Artifact { run, job, name } => tx.execute(
                    "DELETE FROM artifacts WHERE run = ?1 AND job = ?2 AND name = ?3",
                    (run, job, name),
                )?,
                Subject::Cache { key } => tx.execute("DELETE FROM caches WHERE key = ?1", [key])?,
            };
        }
        // References of runs that are over protect nothing any more.
        let dead: Vec<RunId> = ref_rows
            .iter()
            .map(|r| r.1)
            .filter(|run| !live_runs.contains(run))
            .collect();
        for run in dead {
            tx.execute("DELETE FROM refs WHERE run = ?1", [run])?;
        }
        // The index first: a crash before the files go leaves orphans,
        // which a later gc collects, never an entry whose blob is missing.
        tx.commit()?;
        after_index();
        // Then the files, under the write lock again so no upload indexes
        // and no download references one of them meanwhile. Between the two
        // transactions another kiln may have taken a blob up again (indexed
        // the same content, pinned it): that one stays.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let planned = std::mem::take(&mut plan.blobs);
        for (digest, size, why) in planned {
            if is_used(&tx, &digest)? {
                plan.kept_bytes += size;
                continue;
            }
            self.blobs.remove(&digest)?;
            plan.blobs.push((digest, size, why));
        }
        tx.commit()?;
        plan.temp_files = self.blobs.remove_stale_temp()?;
        Ok(plan)
    }
}

/// Whether an index entry, a pin or a reference names `digest`.
fn is_used(tx: &rusqlite::Transaction<'_>, digest: &Digest) -> Result<bool> {
    Ok(tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM artifacts WHERE digest = ?1)
             OR EXISTS (SELECT 1 FROM cache_paths WHERE digest = ?1)
             OR EXISTS (SELECT 1 FROM pins WHERE digest = ?1)
             OR EXISTS (SELECT 1 FROM refs WHERE digest = ?1)",
        [digest.to_hex()],
        |r| r.get(0),
    )?)
}

fn digests(tx: &rusqlite::Transaction<'_>, sql: &str) -> Result<HashSet<Digest>> {
    let mut stmt = tx.prepare(sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = HashSet::new();
    for hex in rows {
        if let Ok(d) = hex?.parse() {
            out.insert(d);
        }
    }
    Ok(out)
}

fn load_candidates(tx: &rusqlite::Transaction<'_>) -> Result<Vec<Candidate>> {
    let mut out = Vec::new();
    let mut stmt = tx.prepare(
        "SELECT a.run, a.job, a.name, coalesce(r.pipeline, ''), a.created_ms, a.accessed_ms,
                a.digest, a.size
         FROM artifacts a LEFT JOIN runs r ON r.id = a.run
         ORDER BY a.run, a.job, a.name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, RunId>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, i64>(7)?,
        ))
    })?;
    for row in rows {
        let (run, job, name, pipeline, created, accessed, digest, size) = row?;
        let Ok(digest) = digest.parse() else { continue };
        out.push(Candidate {
            subject: Subject::Artifact { run, job, name },
            pipeline,
            run,
            created,
            accessed,
            digests: vec![(digest, size as u64)],
        });
    }
    let mut stmt =
        tx.prepare("SELECT key, pipeline, run, created_ms, accessed_ms FROM caches ORDER BY key")?;
    let caches: Vec<(String, String, RunId, i64, i64)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut paths = tx.prepare("SELECT digest, size FROM cache_paths WHERE key = ?1")?;
    for (key, pipeline, run, created, accessed) in caches {
        let digests = paths
            .query_map([&key], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?
            .filter_map(|row| {
                let (hex, size) = row.ok()?;
                Some((hex.parse().ok()?, size as u64))
            })
            .collect();
        out.push(Candidate {
            subject: Subject::Cache { key },
            pipeline,
            run,
            created,
            accessed,
            digests,
        });
    }
    Ok(out)
}

/// The pure part: one decision per candidate.
fn decide(
    policy: &Policy,
    candidates: &[Candidate],
    pins: &HashSet<Digest>,
    live_runs: &HashSet<RunId>,
    referenced: &HashMap<Digest, RunId>,
    now: i64,
) -> Vec<Result<Keep, Drop>> {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    // The newest `keep_runs` runs (artifacts) or entries (caches) per pipeline.
    let mut newest: BTreeMap<(bool, &str), Vec<(i64, RunId)>> = BTreeMap::new();
    for c in candidates {
        let is_cache = matches!(c.subject, Subject::Cache { .. });
        let rank = if is_cache { c.created } else { c.run };
        newest
            .entry((is_cache, c.pipeline.as_str()))
            .or_default()
            .push((rank, c.run));
    }
    for ranks in newest.values_mut() {
        ranks.sort_unstable_by(|a, b| b.cmp(a));
        ranks.dedup();
    }
    let mut decisions: Vec<Result<Keep, Drop>> = candidates
        .iter()
        .map(|c| {
            if c.digests.iter().any(|d| pins.contains(&d.0)) {
                return Ok(Keep::Pinned);
            }
            let uploader_live =
                matches!(c.subject, Subject::Artifact { .. } | Subject::Cache { .. })
                    && live_runs.contains(&c.run);
            if uploader_live {
                return Ok(Keep::InUse(c.run));
            }
            if let Some(run) = c.digests.iter().find_map(|d| referenced.get(&d.0)) {
                return Ok(Keep::InUse(*run));
            }
            if let Some(max) = policy.max_age
                && now.saturating_sub(c.created) >= ms(max)
            {
                return Err(Drop::Age(max));
            }
            if let Some(max) = policy.max_idle
                && now.saturating_sub(c.accessed) >= ms(max)
            {
                return Err(Drop::Idle(max));
            }
            if let Some(keep) = policy.keep_runs {
                let is_cache = matches!(c.subject, Subject::Cache { .. });
                let rank = if is_cache { c.created } else { c.run };
                let ranks = &newest[&(is_cache, c.pipeline.as_str())];
                let position = ranks.iter().position(|r| r.0 == rank).unwrap_or(0);
                if position >= keep as usize {
                    return Err(Drop::Count {
                        pipeline: c.pipeline.clone(),
                        keep,
                    });
                }
            }
            Ok(Keep::Policy)
        })
        .collect();
    if let Some(max) = policy.max_size {
        // Sizes of the distinct blobs still kept; drop the least recently
        // used droppable entries until under the limit. A blob shared by a
        // kept entry frees nothing, so it is counted once.
        let mut size_of: HashMap<Digest, u64> = HashMap::new();
        let mut users: HashMap<Digest, usize> = HashMap::new();
        for (c, d) in candidates.iter().zip(&decisions) {
            if d.is_ok() {
                for (digest, size) in &c.digests {
                    size_of.insert(*digest, *size);
                    *users.entry(*digest).or_default() += 1;
                }
            }
        }
        let mut total: u64 = size_of.values().sum();
        let mut order: Vec<usize> = (0..candidates.len())
            .filter(|&i| decisions[i] == Ok(Keep::Policy))
            .collect();
        order.sort_by_key(|&i| (candidates[i].accessed, candidates[i].created));
        for i in order {
            if total <= max {
                break;
            }
            decisions[i] = Err(Drop::Size(max));
            for (digest, size) in &candidates[i].digests {
                if let Some(n) = users.get_mut(digest) {
                    *n -= 1;
                    if *n == 0 {
                        total -= size;
                    }
                }
            }
        }
    }
    decisions
}
