//! The seam to the artifact store behind the `artifacts` import.
//!
//! kiln-wasm does not know the store; the CLI hands the host an
//! [`ArtifactAccess`] backed by kiln-store (`PluginArtifacts` in
//! `runtime/cli/src/plugin_artifacts.rs`: the run's store, names and rules,
//! as for `artifacts:` on a job). [`NoArtifactStore`], whose every call fails
//! with [`ArtifactError::Store`], is for hosts without a store (tests,
//! tools that only inspect components).

use std::path::Path;

/// Why an artifact call failed; mirrors the WIT `artifact-error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactError {
    /// No artifact of that name is visible to this job.
    NotFound(String),
    /// Not a valid artifact name.
    InvalidName(String),
    /// The path is outside the workspace or not granted.
    Denied(String),
    /// The store failed.
    Store(String),
}

/// Put and get artifacts for a plugin. Paths are already checked to be
/// inside the workspace lexically; implementations must open them confined
/// to the workspace (cap-std), since a symlink can point out of it.
pub trait ArtifactAccess: Send + Sync {
    /// Stores the file or directory at `path` as artifact `name` of `job`;
    /// returns its `sha256:…` digest.
    fn put(&self, job: &str, name: &str, path: &Path) -> Result<String, ArtifactError>;
    /// Writes artifact `name` (visible to `job`) to `path`; returns its
    /// digest.
    fn get(&self, job: &str, name: &str, path: &Path) -> Result<String, ArtifactError>;
}

/// The artifact access of a run without a store: every call fails.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoArtifactStore;

const NO_STORE: &str =
    "no artifact store in this run: plugin artifacts are not wired to kiln's store yet";

impl ArtifactAccess for NoArtifactStore {
    fn put(&self, _: &str, _: &str, _: &Path) -> Result<String, ArtifactError> {
        Err(ArtifactError::Store(NO_STORE.into()))
    }

    fn get(&self, _: &str, _: &str, _: &Path) -> Result<String, ArtifactError> {
        Err(ArtifactError::Store(NO_STORE.into()))
    }
}
