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
            if args.check_images {
                return check_images(&loaded.plan);
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

/// `--check-images`: every literal image must be in the local engine.
/// Nothing is pulled; images computed at run time cannot be checked.
fn check_images(plan: &kiln_pipeline::Plan) -> Result<u8, CliError> {
    let (fixed, dynamic) = crate::containers::images(plan);
    for (image, used_by) in &dynamic {
        eprintln!("note: cannot check `{image}` ({used_by}): it is computed when the job runs");
    }
    if fixed.is_empty() {
        println!("no images to check");
        return Ok(0);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Engine(format!("cannot start the async runtime: {e}")))?;
    let engine = crate::containers::engine();
    let mut missing = 0;
    let palette = Palette::stdout();
    for (image, used_by) in &fixed {
        let present = runtime
            .block_on(kiln_docker::image_exists(&engine, image))
            .map_err(|e| CliError::Engine(e.to_string()))?;
        if present {
            println!(
                "{} image `{image}` is present ({used_by})",
                palette.paint(style::good(), "✓")
            );
        } else {
            missing += 1;
            eprintln!(
                "error: image `{image}` ({used_by}) is not present locally; build it (`docker build -t {image} .`) or load it (`docker load -i FILE.tar`)"
            );
        }
    }
    Ok(if missing == 0 { 0 } else { EXIT_INVALID })
}
