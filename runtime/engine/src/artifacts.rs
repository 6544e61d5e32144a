//! Artifacts and caches as the engine sees them: a small trait the CLI
//! implements over the content-addressed store (kiln-store), so this crate
//! never depends on the store.
//!
//! When a job attempt runs (see `step.rs`):
//! 1. before its first step, the artifacts of the jobs it needs are put
//!    into the workspace ([`ArtifactStore::download`]; only those named in
//!    `download:` if it has one), then its `cache:` is restored
//!    ([`ArtifactStore::restore_cache`]);
//! 2. the seed's `artifact:` / `download_artifact:` steps call the same
//!    methods when they run;
//! 3. after every step succeeded, its `artifacts:` are uploaded
//!    ([`ArtifactStore::upload`]) and, if the cache key was not an exact
//!    hit, the cache is saved ([`ArtifactStore::save_cache`]).
//!
//! A failed transfer fails the attempt as an infrastructure failure with
//! the store's reason. Every transfer is reported as [`Event::Transfer`].
//!
//! [`Event::Transfer`]: crate::Event::Transfer

use std::fmt;
use std::path::PathBuf;

use kiln_pipeline::ArtifactSpec;
use serde::Serialize;

use crate::event::RunId;
use crate::executor::BoxFuture;

/// Puts artifacts of needed jobs into a job's workspace.
#[derive(Debug, Clone)]
pub struct DownloadRequest {
    /// The run.
    pub run: RunId,
    /// The downloading job's name.
    pub job: String,
    /// Names of the jobs whose artifacts are wanted.
    pub from: Vec<String>,
    /// Only these artifact names (`download:`); `None` means all of them.
    pub names: Option<Vec<String>>,
    /// The job's workspace.
    pub workspace: PathBuf,
}

/// Uploads a job's artifacts.
#[derive(Debug, Clone)]
pub struct UploadRequest {
    /// The run.
    pub run: RunId,
    /// The uploading job's name.
    pub job: String,
    /// What to upload, in order.
    pub artifacts: Vec<ArtifactSpec>,
    /// The job's workspace.
    pub workspace: PathBuf,
}

/// Restores or saves a job's cache; the key is already rendered.
#[derive(Debug, Clone)]
pub struct CacheRequest {
    /// The run.
    pub run: RunId,
    /// The job's name.
    pub job: String,
    /// The pipeline (caches are counted per pipeline by retention).
    pub pipeline: String,
    /// The exact key.
    pub key: String,
    /// Prefixes to fall back to, in order.
    pub restore_keys: Vec<String>,
    /// Paths as written in `cache.paths`.
    pub paths: Vec<String>,
    /// The job's workspace.
    pub workspace: PathBuf,
}

/// What moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferAction {
    /// An artifact went into the store.
    Upload,
    /// An artifact came out of the store into the workspace.
    Download,
    /// A cache entry was restored (`detail` says exact or fallback).
    CacheRestore,
    /// No cache entry matched.
    CacheMiss,
    /// A cache entry was saved.
    CacheSave,
    /// The cache was not saved (`detail` says why).
    CacheSkip,
}

/// One completed transfer, as reported in [`crate::Event::Transfer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transfer {
    /// What happened.
    pub action: TransferAction,
    /// Artifact name or cache key.
    pub name: String,
    /// The blob's digest (`sha256:…`), when one blob is involved.
    pub digest: Option<String>,
    /// Bytes stored or restored.
    pub bytes: u64,
    /// More to say (`from `build``, `exact key`, `restored from prefix …`).
    pub detail: Option<String>,
}

/// A restored (or missed) cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOutcome {
    /// Whether the exact key was restored (then the cache is not saved).
    pub exact_hit: bool,
    /// The transfer to report.
    pub transfer: Transfer,
}

/// The artifact and cache store, as the engine uses it. Errors are
/// complete sentences for the user (`cannot upload artifact `app`: disk
/// full …`); the engine puts them in the job's failure reason.
pub trait ArtifactStore: Send + Sync {
    /// Puts the artifacts of `request.from` into the workspace.
    fn download(&self, request: DownloadRequest) -> BoxFuture<'_, Result<Vec<Transfer>, String>>;

    /// Uploads `request.artifacts` from the workspace.
    fn upload(&self, request: UploadRequest) -> BoxFuture<'_, Result<Vec<Transfer>, String>>;

    /// Restores the cache: exact key, else the newest entry matching a
    /// restore prefix.
    fn restore_cache(&self, request: CacheRequest) -> BoxFuture<'_, Result<CacheOutcome, String>>;

    /// Saves the cache under `request.key` (the engine calls this only after
    /// success and when the exact key missed).
    fn save_cache(&self, request: CacheRequest) -> BoxFuture<'_, Result<Transfer, String>>;
}

impl fmt::Debug for dyn ArtifactStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ArtifactStore")
    }
}
