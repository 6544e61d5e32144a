//! The `artifacts` import of plugins over kiln-store: the same store, names
//! and rules as `artifacts:` on a job.
//!
//! Plugins are loaded (and checked) before the run record exists, so the
//! run's number is filled in once it does; a plugin step only runs after.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use kiln_store::artifacts::{Artifacts, Error};
use kiln_wasm::{ArtifactAccess, ArtifactError};

/// Artifact access for the plugins of one run.
#[derive(Debug)]
pub(crate) struct PluginArtifacts {
    state: PathBuf,
    workspace: PathBuf,
    run: Arc<OnceLock<i64>>,
}

impl PluginArtifacts {
    /// Access to the store in `state` for plugins working in `workspace`;
    /// `run` is set when the run record is created.
    pub(crate) fn new(state: PathBuf, workspace: PathBuf, run: Arc<OnceLock<i64>>) -> Self {
        Self {
            state,
            workspace,
            run,
        }
    }

    fn run(&self) -> Result<i64, ArtifactError> {
        self.run
            .get()
            .copied()
            .ok_or_else(|| ArtifactError::Store("the run has not started".into()))
    }

    fn open(&self) -> Result<Artifacts, ArtifactError> {
        Artifacts::open(&self.state)
            .map_err(|e| ArtifactError::Store(crate::store_adapter::describe(&e)))
    }

    /// `path` with every link resolved, if it stays inside the workspace:
    /// the host checked the path's text, but a plugin with `fs: write` can
    /// plant a symlink to a host file and must not upload it.
    fn confined(&self, path: &Path) -> Result<PathBuf, ArtifactError> {
        let denied = || {
            ArtifactError::Denied(format!(
                "`{}` leads outside the workspace",
                path.strip_prefix(&self.workspace).unwrap_or(path).display()
            ))
        };
        let workspace = self.workspace.canonicalize().map_err(|_| denied())?;
        let real = path.canonicalize().map_err(|e| {
            ArtifactError::NotFound(format!(
                "`{}`: {e}",
                path.strip_prefix(&self.workspace).unwrap_or(path).display()
            ))
        })?;
        if real.starts_with(&workspace) {
            Ok(real)
        } else {
            Err(denied())
        }
    }
}

fn wit_error(err: &Error) -> ArtifactError {
    let message = crate::store_adapter::describe(err);
    match err {
        Error::InvalidName { .. } => ArtifactError::InvalidName(message),
        Error::NotFound { .. } => ArtifactError::NotFound(message),
        _ => ArtifactError::Store(message),
    }
}

impl ArtifactAccess for PluginArtifacts {
    fn put(&self, job: &str, name: &str, path: &Path) -> Result<String, ArtifactError> {
        let real = self.confined(path)?;
        let workspace = self
            .workspace
            .canonicalize()
            .map_err(|e| ArtifactError::Store(e.to_string()))?;
        let relative = real
            .strip_prefix(&workspace)
            .map(|p| p.to_string_lossy().into_owned())
            .map_err(|_| ArtifactError::Denied("outside the workspace".into()))?;
        let relative = if relative.is_empty() {
            ".".to_owned()
        } else {
            relative
        };
        let artifact = self
            .open()?
            .put(self.run()?, job, name, &workspace, &relative)
            .map_err(|e| wit_error(&e))?;
        Ok(format!("sha256:{}", artifact.digest.to_hex()))
    }

    fn get(&self, _job: &str, name: &str, path: &Path) -> Result<String, ArtifactError> {
        // The destination's parent must be real and inside the workspace;
        // the destination itself is replaced, never followed.
        let parent = path.parent().unwrap_or(&self.workspace);
        self.confined(parent)?;
        if path
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            return Err(ArtifactError::Denied(format!(
                "`{}` is a symbolic link",
                path.strip_prefix(&self.workspace).unwrap_or(path).display()
            )));
        }
        let artifact = self
            .open()?
            .get(self.run()?, name, path)
            .map_err(|e| wit_error(&e))?;
        Ok(format!("sha256:{}", artifact.digest.to_hex()))
    }
}
