//! `kiln plan`: what would run, in which order.

use crate::args::PlanArgs;
use crate::error::CliError;
use crate::locate;
use crate::plan_view;

/// Runs `kiln plan`.
pub(crate) fn run(args: &PlanArgs) -> Result<u8, CliError> {
    let located = locate::pipeline(args.file.file.as_deref())?;
    let (_, loaded) = super::load_for_use(&located, &args.vars)?;
    print!("{}", plan_view::render(&loaded.plan, args.format));
    Ok(0)
}
