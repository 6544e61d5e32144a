//! kiln's plugin host: runs WASI components (`uses:` steps, health checks,
//! deployment strategies) in wasmtime with only what the pipeline grants.
//!
//! Owns the sandbox policy (workspace preopen, network allow-list, env,
//! secrets), resource limits (memory, time, output), the compile cache and
//! loaded components. It takes component bytes and their digest; finding
//! and fetching components (paths, bundled names, OCI, `kiln.lock`) is the
//! caller's. Nothing here prints: guest output goes to the engine's output
//! channel and kiln's own diagnostics to `tracing`.
#![warn(missing_docs)]

mod action;
pub mod artifacts;
pub mod bindings;
mod bounded;
mod cache;
mod error;
pub mod health;
mod inspect;
mod metadata;
mod output;
mod runtime;
mod sandbox;
mod state;
pub mod strategy;
mod trap;

pub use action::{Resolver, WasmActions};
pub use artifacts::{ArtifactAccess, ArtifactError, NoArtifactStore};
pub use bounded::printable;
pub use cache::default_dir as default_cache_dir;
pub use error::WasmError;
pub use inspect::{Inspection, inspect};
pub use metadata::{Capability, InputSpec, Metadata, OutputSpec, Ungranted};
pub use runtime::{CacheStats, EPOCH_TICK, Limits, Plugin, Runtime, World, sha256};
pub use sandbox::WORKSPACE_GUEST_PATH;
