//! `kiln validate`: every problem in a pipeline file, or a one-line summary.

use crate::args::ValidateArgs;
use crate::diagnostics;
use crate::error::{CliError, EXIT_INVALID};
use crate::locate;
use crate::style::{self, Palette};

/// Runs `kiln validate`.
pub(crate) fn run(args: &ValidateArgs) -> Result<u8, CliError> {
    let located = locate::pipeline(args.file.file.as_deref())?;
    let (source, loaded) = super::load(&located, &args.vars)?;
    let loaded = loaded.and_then(|mut loaded| {
        let prepared = crate::plugins::prepare(&loaded.plan, &located.workspace);
        let (errors, warnings) = super::split(prepared.diagnostics);
        loaded.warnings.extend(warnings);
        if errors.is_empty() {
            return Ok(loaded);
        }
        let mut diagnostics = loaded.warnings;
        diagnostics.extend(errors);
        match super::invalid(source.clone(), diagnostics) {
            CliError::Load(err) => Err(err),
            _ => unreachable!("invalid() builds a load error"),
        }
    });
    match loaded {
        Ok(loaded) => {
            if args.json {
                println!("{}", diagnostics::json(&source, &loaded.warnings));
            } else {
                eprint!(
                    "{}",
                    diagnostics::render(&source, &loaded.warnings, Palette::stderr())
                );
                let palette = Palette::stdout();
                let (jobs, levels) = (loaded.plan.jobs.len(), loaded.plan.levels.len());
                println!(
                    "{} {}: {jobs} {}, {levels} {}",
                    palette.paint(style::good(), "✓"),
                    source.name,
                    if jobs == 1 { "job" } else { "jobs" },
                    if levels == 1 { "level" } else { "levels" },
                );
            }
            Ok(0)
        }
        Err(err) if args.json => {
            println!("{}", diagnostics::json(&source, &err.diagnostics));
            Ok(EXIT_INVALID)
        }
        Err(err) => Err(CliError::Load(err)),
    }
}
