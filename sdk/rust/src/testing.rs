//! Helpers to unit-test plugin logic natively (`cargo test` on the host
//! target): a [`TestHost`] standing in for the `kiln:plugin/host` imports,
//! and builders for the values the host would pass.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::rc::Rc;

use crate::host::{self, ArtifactError, Backend, LogLevel};
use crate::{Action, Context, Inputs, Metadata};

#[derive(Default)]
struct State {
    secrets: BTreeMap<String, String>,
    logs: Vec<(LogLevel, String)>,
    progress: Vec<(u8, String)>,
    artifacts: BTreeMap<String, String>,
}

/// A host double: secrets you grant, and a record of every log line,
/// progress report and artifact upload. Install it for the current thread
/// with [`TestHost::install`]:
///
/// ```
/// use kiln_sdk::{host, testing::TestHost};
/// let test_host = TestHost::new().secret("TOKEN", "s3cret");
/// let _guard = test_host.install();
/// host::info("hello");
/// assert_eq!(host::secret("TOKEN").as_deref(), Some("s3cret"));
/// assert_eq!(host::secret("OTHER"), None);
/// assert_eq!(test_host.logs(), vec![(host::LogLevel::Info, "hello".to_string())]);
/// ```
#[derive(Clone, Default)]
pub struct TestHost {
    state: Rc<RefCell<State>>,
}

/// Uninstalls the [`TestHost`] when dropped.
#[must_use = "the test host is uninstalled when the guard is dropped"]
pub struct Installed {
    previous: Option<Rc<dyn Backend>>,
}

impl Drop for Installed {
    fn drop(&mut self) {
        host::install(self.previous.take());
    }
}

impl TestHost {
    /// A host with no secrets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Grants secret `name`.
    pub fn secret(self, name: &str, value: &str) -> Self {
        self.state
            .borrow_mut()
            .secrets
            .insert(name.into(), value.into());
        self
    }

    /// Makes artifact `name` (with `digest`) available to `artifact_get`.
    pub fn artifact(self, name: &str, digest: &str) -> Self {
        self.state
            .borrow_mut()
            .artifacts
            .insert(name.into(), digest.into());
        self
    }

    /// Routes [`crate::host`] calls of this thread here until the guard drops.
    pub fn install(&self) -> Installed {
        Installed {
            previous: host::install(Some(Rc::new(self.clone()))),
        }
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.state.borrow().logs.clone()
    }

    /// Every progress report so far.
    pub fn progress(&self) -> Vec<(u8, String)> {
        self.state.borrow().progress.clone()
    }
}

impl Backend for TestHost {
    fn log(&self, level: LogLevel, message: &str) {
        self.state.borrow_mut().logs.push((level, message.into()));
    }

    fn progress(&self, percent: u8, message: &str) {
        self.state
            .borrow_mut()
            .progress
            .push((percent, message.into()));
    }

    fn secret(&self, name: &str) -> Option<String> {
        self.state.borrow().secrets.get(name).cloned()
    }

    fn artifact_put(&self, name: &str, path: &str) -> Result<String, ArtifactError> {
        let digest = format!("sha256:test-{name}-{path}");
        self.state
            .borrow_mut()
            .artifacts
            .insert(name.into(), digest.clone());
        Ok(digest)
    }

    fn artifact_get(&self, name: &str, _path: &str) -> Result<String, ArtifactError> {
        self.state
            .borrow()
            .artifacts
            .get(name)
            .cloned()
            .ok_or_else(|| ArtifactError::NotFound(name.into()))
    }
}

/// Values for `metadata`'s inputs, as a host would pass them.
pub fn inputs(metadata: &Metadata, values: &[(&str, &str)]) -> Inputs {
    Inputs::new(
        values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        metadata.inputs.clone(),
    )
}

/// A [`Context`] builder for action `A`: `context::<A>().input("k", "v").workspace(dir).build()`.
pub fn context<A: Action>() -> ContextBuilder<A> {
    ContextBuilder {
        values: Vec::new(),
        workspace: None,
        action: PhantomData,
    }
}

/// Builds a [`Context`] for action `A`, reading inputs through its metadata.
pub struct ContextBuilder<A> {
    values: Vec<(String, String)>,
    workspace: Option<PathBuf>,
    action: PhantomData<A>,
}

impl<A: Action> ContextBuilder<A> {
    /// Sets input `key`.
    pub fn input(mut self, key: &str, value: &str) -> Self {
        self.values.push((key.into(), value.into()));
        self
    }

    /// Grants a workspace (a real directory: the action's file I/O is std).
    pub fn workspace(mut self, dir: impl Into<PathBuf>) -> Self {
        self.workspace = Some(dir.into());
        self
    }

    /// The context, with job `test`, step `test` and run 1.
    pub fn build(self) -> Context {
        Context {
            inputs: Inputs::new(self.values, A::metadata().inputs),
            workspace: self.workspace,
            job: "test".into(),
            step: "test".into(),
            run_id: 1,
        }
    }
}
