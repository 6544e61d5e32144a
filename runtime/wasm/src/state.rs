//! The per-step store data and the host side of the `host` and `artifacts`
//! imports.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use kiln_pipeline::FsAccess;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::artifacts::{ArtifactAccess, ArtifactError};
use crate::bindings::v0_1::action::kiln::plugin::{action_types, artifacts, host, types};
use crate::bounded::{MAX_MESSAGE, truncate};
use crate::output::Pipe;

/// Everything one instance may reach.
pub(crate) struct HostState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limits: StoreLimits,
    /// Where `host.log` and `host.progress` lines go (the step's stderr).
    pub log: Option<Pipe>,
    /// Granted secrets only.
    pub secrets: Vec<(String, String)>,
    pub artifacts: Arc<dyn ArtifactAccess>,
    pub job: String,
    /// The host workspace and how it is granted.
    pub workspace: Option<(PathBuf, FsAccess)>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl action_types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: types::LogLevel, message: String) {
        let prefix = match level {
            types::LogLevel::Trace => "trace: ",
            types::LogLevel::Debug => "debug: ",
            types::LogLevel::Info => "",
            types::LogLevel::Warn => "warning: ",
            types::LogLevel::Error => "error: ",
        };
        let message = truncate(&message, MAX_MESSAGE);
        self.write_log(&format!("{prefix}{message}\n"));
    }

    fn progress(&mut self, percent: u8, message: String) {
        let message = truncate(&message, MAX_MESSAGE);
        self.write_log(&format!("progress {}%: {message}\n", percent.min(100)));
    }

    /// Secret names are case-insensitive, as in GitHub Actions and in the
    /// engine's grant and `validate`'s check.
    fn secret(&mut self, name: String) -> Option<String> {
        self.secrets
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.clone())
    }
}

impl HostState {
    fn write_log(&self, line: &str) {
        if let Some(pipe) = &self.log {
            pipe.send(line.as_bytes());
        }
    }

    /// `path` inside the workspace, if it is relative and stays inside.
    /// (The store integration must still open it confined: a symlink inside
    /// the workspace can point out of it.)
    fn workspace_path(&self, path: &str, write: bool) -> Result<PathBuf, ArtifactError> {
        let Some((root, access)) = &self.workspace else {
            return Err(ArtifactError::Denied(
                "this step has no workspace access (`permissions.fs: none`)".into(),
            ));
        };
        if write && *access != FsAccess::Write {
            return Err(ArtifactError::Denied(format!(
                "writing `{path}` into the workspace needs `fs: write` under `permissions:`"
            )));
        }
        let relative = Path::new(path);
        let inside = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !inside || path.is_empty() {
            return Err(ArtifactError::Denied(format!(
                "`{path}` is not a relative path inside the workspace"
            )));
        }
        Ok(root.join(relative))
    }
}

impl artifacts::Host for HostState {
    fn put(&mut self, name: String, path: String) -> Result<String, artifacts::ArtifactError> {
        let path = self.workspace_path(&path, false)?;
        Ok(self.artifacts.put(&self.job, &name, &path)?)
    }

    fn get(&mut self, name: String, path: String) -> Result<String, artifacts::ArtifactError> {
        let path = self.workspace_path(&path, true)?;
        Ok(self.artifacts.get(&self.job, &name, &path)?)
    }
}

impl From<ArtifactError> for artifacts::ArtifactError {
    fn from(e: ArtifactError) -> Self {
        match e {
            ArtifactError::NotFound(m) => Self::NotFound(m),
            ArtifactError::InvalidName(m) => Self::InvalidName(m),
            ArtifactError::Denied(m) => Self::Denied(m),
            ArtifactError::Store(m) => Self::Store(m),
        }
    }
}
