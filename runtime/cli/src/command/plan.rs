//! `kiln plan`: what would run, in which order.

use crate::args::PlanArgs;
use crate::diagnostics;
use crate::error::CliError;
use crate::locate;
use crate::plan_view;
use crate::style::Palette;

/// Runs `kiln plan`.
pub(crate) fn run(args: &PlanArgs) -> Result<u8, CliError> {
    let located = locate::pipeline(args.file.file.as_deref())?;
    let (source, loaded) = super::load(&located, &args.vars)?;
    let loaded = loaded.map_err(CliError::Load)?;
    eprint!(
        "{}",
        diagnostics::render(&source, &loaded.warnings, Palette::stderr())
    );
    print!("{}", plan_view::render(&loaded.plan, args.format));
    Ok(0)
}
