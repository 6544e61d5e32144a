//! What the host offers besides WASI: leveled log lines, progress, granted
//! secrets and the run's artifacts.
//!
//! Each call goes to the backend the entry-point macro installed (the real
//! `kiln:plugin/host` imports inside a component), or to a
//! [`crate::testing::TestHost`] in native unit tests. With neither — a native
//! call outside a test host — log lines go to stderr and there are no
//! secrets or artifacts.

use std::cell::RefCell;
use std::rc::Rc;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal progress.
    Info,
    /// Something the user should look at.
    Warn,
    /// Something failed.
    Error,
}

/// Why an artifact call failed (mirrors `kiln:plugin/artifacts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactError {
    /// No artifact of that name is visible to this job.
    NotFound(String),
    /// The name is not a valid artifact name.
    InvalidName(String),
    /// The path is outside the workspace or not granted.
    Denied(String),
    /// The store failed.
    Store(String),
}

impl std::fmt::Display for ArtifactError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound(m) => write!(f, "artifact not found: {m}"),
            Self::InvalidName(m) => write!(f, "invalid artifact name: {m}"),
            Self::Denied(m) => write!(f, "artifact access denied: {m}"),
            Self::Store(m) => write!(f, "artifact store failed: {m}"),
        }
    }
}

impl std::error::Error for ArtifactError {}

/// The calls a host answers. Implemented by the glue the entry-point macros
/// generate and by [`crate::testing::TestHost`]; plugins call the free
/// functions of this module instead.
#[doc(hidden)]
pub trait Backend {
    fn log(&self, level: LogLevel, message: &str);
    fn progress(&self, percent: u8, message: &str);
    fn secret(&self, name: &str) -> Option<String>;
    // Only the `action` world imports artifacts.
    fn artifact_put(&self, _name: &str, _path: &str) -> Result<String, ArtifactError> {
        Err(ArtifactError::Denied(
            "only actions can use artifacts".into(),
        ))
    }
    fn artifact_get(&self, _name: &str, _path: &str) -> Result<String, ArtifactError> {
        Err(ArtifactError::Denied(
            "only actions can use artifacts".into(),
        ))
    }
}

thread_local! {
    // A component is single-threaded; native tests each get their own
    // thread, so a test host never leaks into a parallel test.
    static BACKEND: RefCell<Option<Rc<dyn Backend>>> = const { RefCell::new(None) };
}

/// Installs `backend` for the calls of this thread; returns the previous one.
#[doc(hidden)]
pub fn install(backend: Option<Rc<dyn Backend>>) -> Option<Rc<dyn Backend>> {
    BACKEND.with(|b| std::mem::replace(&mut *b.borrow_mut(), backend))
}

fn with<R>(f: impl FnOnce(Option<&dyn Backend>) -> R) -> R {
    let backend = BACKEND.with(|b| b.borrow().clone());
    f(backend.as_deref())
}

/// Writes a line to the step's log. The host masks secrets in it.
pub fn log(level: LogLevel, message: impl AsRef<str>) {
    let message = message.as_ref();
    with(|b| match b {
        Some(b) => b.log(level, message),
        None => eprintln!("[{level:?}] {message}"),
    })
}

/// [`log`] at [`LogLevel::Debug`].
pub fn debug(message: impl AsRef<str>) {
    log(LogLevel::Debug, message)
}

/// [`log`] at [`LogLevel::Info`].
pub fn info(message: impl AsRef<str>) {
    log(LogLevel::Info, message)
}

/// [`log`] at [`LogLevel::Warn`].
pub fn warn(message: impl AsRef<str>) {
    log(LogLevel::Warn, message)
}

/// [`log`] at [`LogLevel::Error`].
pub fn error(message: impl AsRef<str>) {
    log(LogLevel::Error, message)
}

/// Reports progress of a long operation (`percent` is clamped to 100).
pub fn progress(percent: u8, message: impl AsRef<str>) {
    with(|b| {
        if let Some(b) = b {
            b.progress(percent.min(100), message.as_ref())
        }
    })
}

/// The value of secret `name` if the pipeline granted it to this step
/// (`permissions.secrets`) and it is set; `None` otherwise — a plugin cannot
/// tell an ungranted secret from a missing one. Declare it with
/// [`crate::Capability::Secret`].
pub fn secret(name: &str) -> Option<String> {
    with(|b| b.and_then(|b| b.secret(name)))
}

/// Uploads the file or directory at `path` (relative to the workspace) as
/// artifact `name`; returns its `sha256:…` digest. Actions only.
pub fn artifact_put(name: &str, path: &str) -> Result<String, ArtifactError> {
    with(|b| match b {
        Some(b) => b.artifact_put(name, path),
        None => Err(ArtifactError::Store("no host: artifacts need kiln".into())),
    })
}

/// Downloads artifact `name` to `path` (relative to the workspace); returns
/// its digest. Actions only.
pub fn artifact_get(name: &str, path: &str) -> Result<String, ArtifactError> {
    with(|b| match b {
        Some(b) => b.artifact_get(name, path),
        None => Err(ArtifactError::Store("no host: artifacts need kiln".into())),
    })
}
