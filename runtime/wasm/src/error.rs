//! Errors of the plugin host. Messages are lowercase and name the plugin;
//! the CLI renders them with their causes.

use std::path::PathBuf;

/// A wasmtime error, kept as a standard error so `#[source]` chains work.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a plugin could not be loaded, inspected or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WasmError {
    /// The wasmtime engine could not be configured (a kiln bug or an
    /// unsupported machine).
    #[error("cannot set up the WebAssembly engine")]
    Engine(#[source] Cause),
    /// The bytes' SHA-256 is not the digest the caller pinned.
    #[error("plugin `{plugin}` has digest `{actual}`, expected `{expected}`; refusing to run it")]
    DigestMismatch {
        /// The reference as written.
        plugin: String,
        /// The digest the caller pinned.
        expected: String,
        /// The digest of the bytes.
        actual: String,
    },
    /// The bytes are not a WebAssembly component (a core module, text, …).
    #[error("plugin `{plugin}` is not a WebAssembly component: {why}")]
    NotAComponent {
        /// The reference as written.
        plugin: String,
        /// What the bytes are instead.
        why: String,
    },
    /// Cranelift rejected the component (invalid or unsupported Wasm).
    #[error("plugin `{plugin}` is not a valid component")]
    Compile {
        /// The reference as written.
        plugin: String,
        /// wasmtime's reason.
        #[source]
        cause: Cause,
    },
    /// The component exports none of kiln's worlds, or not the one asked for.
    #[error("plugin `{plugin}` is a `{found}` component; a `{expected}` is needed here")]
    WrongWorld {
        /// The reference as written.
        plugin: String,
        /// The world needed (`action`, …).
        expected: String,
        /// What the component looks like (`kiln:plugin health-check`, `unknown world`).
        found: String,
    },
    /// The component imports something the host does not provide.
    #[error("plugin `{plugin}` imports `{import}`, which kiln does not provide{hint}")]
    UnknownImport {
        /// The reference as written.
        plugin: String,
        /// The missing import's name.
        import: String,
        /// A note on what kiln does provide (starts with `; `), or empty.
        hint: String,
    },
    /// The address a health check is to reach cannot be resolved.
    #[error("health check `{plugin}` cannot reach its target: {message}")]
    Target {
        /// The reference as written.
        plugin: String,
        /// Why the target's address does not resolve.
        message: String,
    },
    /// Instantiating or calling the component failed (a trap, a limit).
    #[error("plugin `{plugin}` failed while {doing}: {message}")]
    Trap {
        /// The reference as written.
        plugin: String,
        /// `loading its metadata`, `running`.
        doing: &'static str,
        /// A one-line summary of the trap (limit, timeout, panic).
        message: String,
    },
    /// `metadata()` returned more than the host accepts.
    #[error("plugin `{plugin}` has unusable metadata: {message}")]
    Metadata {
        /// The reference as written.
        plugin: String,
        /// Which limit it exceeds.
        message: String,
    },
    /// The compile cache directory could not be written.
    #[error("cannot write the compiled-code cache `{path}`")]
    Cache {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        cause: std::io::Error,
    },
}

/// Wraps a wasmtime error as a `#[source]`.
impl WasmError {
    /// The message with every cause after it, on one line (`…: cause:
    /// its cause`), as a step's or a rollout's failure reason.
    pub fn with_causes(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(inner) = cause {
            text.push_str(": ");
            text.push_str(&inner.to_string());
            cause = inner.source();
        }
        text
    }
}

pub(crate) fn cause(err: wasmtime::Error) -> Cause {
    err.into_boxed_dyn_error()
}
