//! `kiln plugin …`: scaffolding and building plugin projects (`new`,
//! `build`), the user plugin store and `kiln.lock`, one file per command, plus [`pipeline`], which resolves a pipeline's `uses:` before
//! `run` and `validate --locked`.
//!
//! Seams the lead connects at merge (search for `SEAM(`):
//! - `inspect::host_inspector`: world, metadata, imports and exports
//!   (`kiln_wasm::inspect`);
//! - `command/run.rs`: the resolved components go to kiln-wasm's executor.

pub(crate) mod build;
pub(crate) mod inspect;
pub(crate) mod install;
pub(crate) mod list;
pub(crate) mod new;
pub(crate) mod pipeline;
pub(crate) mod push;
pub(crate) mod remove;
pub(crate) mod verify;

use std::path::{Path, PathBuf};

use clap::Subcommand;
use kiln_fetch::{BundledPlugin, BundledPlugins, PluginStore};

use crate::error::CliError;
use crate::locate::{self, Located};

/// `kiln plugin …`.
#[derive(Debug, Subcommand)]
pub(crate) enum PluginCommand {
    /// Scaffold a plugin project (an action) in a new directory NAME
    New(crate::args::PluginNewArgs),
    /// Build the plugin project in DIR into DIR/dist/<name>.wasm
    Build(crate::args::PluginBuildArgs),
    /// Fetch a plugin, verify it, store it, and pin it in kiln.lock
    Install(install::InstallArgs),
    /// List the plugins in the user plugin store
    List,
    /// Show a plugin's digest, source, world, imports/exports and capabilities
    Inspect(inspect::InspectArgs),
    /// Remove a plugin from the store (and its pin from kiln.lock)
    Remove(remove::RemoveArgs),
    /// Re-hash every stored plugin and report corrupt or missing ones
    Verify,
    /// Push a component to an OCI registry as a Wasm artifact
    Push(push::PushArgs),
}

/// Runs `kiln plugin …`.
pub(crate) fn run(command: &PluginCommand) -> Result<u8, CliError> {
    match command {
        PluginCommand::New(args) => new::run(args),
        PluginCommand::Build(args) => build::run(args),
        PluginCommand::Install(args) => install::run(args),
        PluginCommand::List => list::run(),
        PluginCommand::Inspect(args) => inspect::run(args),
        PluginCommand::Remove(args) => remove::run(args),
        PluginCommand::Verify => verify::run(),
        PluginCommand::Push(args) => push::run(args),
    }
}

/// The bundled first-party plugins (`kiln/<name>@<major>`), embedded in
/// the binary by kiln-bundled.
pub(crate) fn bundled() -> &'static dyn BundledPlugins {
    fn find(name: &str, major: u32) -> Option<BundledPlugin> {
        kiln_bundled::find(name, u64::from(major)).map(|b| BundledPlugin {
            name: b.name.into(),
            version: b.version.into(),
            bytes: std::borrow::Cow::Borrowed(b.bytes),
        })
    }
    &find
}

/// The one target every plugin is built for.
pub(crate) const WASM_TARGET: &str = "wasm32-wasip2";

/// The componentize-py release kiln is tested with (also in `.ci/run`).
pub(crate) const COMPONENTIZE_PY: &str = "0.25.1";

/// The user plugin store (`KILN_HOME`, else the XDG data dir).
pub(crate) fn open_store() -> Result<PluginStore, CliError> {
    Ok(PluginStore::open_default()?)
}

/// The pipeline a plugin command works for: `--file`, else the default
/// pipeline of the current directory, else none (then nothing is pinned
/// and local paths are relative to the current directory).
pub(crate) fn context(file: Option<&Path>) -> Result<Option<Located>, CliError> {
    match file {
        Some(file) => locate::pipeline(Some(file)).map(Some),
        None => Ok(locate::pipeline(None).ok()),
    }
}

/// Where local paths are relative to.
pub(crate) fn base_dir(context: Option<&Located>) -> PathBuf {
    match context {
        Some(located) => located.workspace.clone(),
        None => PathBuf::from("."),
    }
}

/// `1.2 MiB`, `812 B`.
pub(crate) fn size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{:.1} MiB", b / (KIB * KIB))
    }
}
