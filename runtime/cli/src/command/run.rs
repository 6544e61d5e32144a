//! `kiln run`: load, record, execute, report.

use std::path::Path;

use crate::args::RunArgs;
use crate::error::CliError;

/// Runs `kiln run`.
pub(crate) fn run(_args: &RunArgs, _state_dir: Option<&Path>) -> Result<u8, CliError> {
    Err(CliError::Engine("the engine is not wired yet".into()))
}
