//! `kiln plugin new|build`: scaffold and build plugin projects.

pub(crate) mod build;
pub(crate) mod new;

use crate::args::PluginCommand;
use crate::error::CliError;

/// Runs a `kiln plugin` subcommand.
pub(crate) fn run(command: &PluginCommand) -> Result<u8, CliError> {
    match command {
        PluginCommand::New(args) => new::run(args),
        PluginCommand::Build(args) => build::run(args),
    }
}

/// The one target every plugin is built for.
pub(crate) const WASM_TARGET: &str = "wasm32-wasip2";

/// The componentize-py release kiln is tested with (also in `.ci/run`).
pub(crate) const COMPONENTIZE_PY: &str = "0.25.1";
