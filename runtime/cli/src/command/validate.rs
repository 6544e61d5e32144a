//! `kiln validate`: every problem in a pipeline file, or a one-line summary.

use kiln_pipeline::{LoadError, Loaded, SourceFile};

use super::plugin::pipeline::Components;
use crate::args::ValidateArgs;
use crate::diagnostics;
use crate::error::{CliError, EXIT_INVALID};
use crate::locate;
use crate::style::{self, Palette};

/// Runs `kiln validate`. Plugin references are always checked as syntax;
/// with `--locked` each is also resolved and compared with kiln.lock.
pub(crate) fn run(args: &ValidateArgs) -> Result<u8, CliError> {
    let located = locate::pipeline(args.file.file.as_deref())?;
    let (source, loaded) = super::load(&located, &args.vars)?;
    let loaded = match loaded {
        Ok(loaded) => with_plugin_checks(loaded, &source, &located, args.locked)?,
        Err(err) => Err(err),
    };
    let loaded = loaded.and_then(|(mut loaded, resolved)| {
        // Capabilities and inputs are checked against the components that
        // need no network (local files, bundled plugins, remote ones pinned
        // in kiln.lock and present in the plugin store); other remote ones
        // are checked when `kiln run` has fetched them.
        let mut components =
            super::plugin::pipeline::fetch_offline(&loaded.plan, &source, &located);
        // `--locked` has resolved (and verified) every reference already.
        components.extend(resolved);
        let prepared = crate::plugins::prepare(&loaded.plan, &located.workspace, &components, None);
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
                summary(&source, &loaded.plan);
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

/// Adds the plugin checks to a loaded pipeline: reference syntax always,
/// and with `--locked` every reference resolved against kiln.lock (those
/// components are returned, for the capability checks).
fn with_plugin_checks(
    loaded: Loaded,
    source: &SourceFile,
    located: &locate::Located,
    locked: bool,
) -> Result<Result<(Loaded, Components), LoadError>, CliError> {
    let mut problems = super::plugin::pipeline::check(&loaded.plan, source);
    let mut resolved = Components::new();
    if problems.is_empty() && locked {
        let mode = kiln_fetch::Mode::Locked;
        match super::plugin::pipeline::resolve(&loaded.plan, source, located, mode) {
            Ok(components) => resolved = components,
            Err(CliError::Load(err)) => problems = err.diagnostics,
            Err(other) => return Err(other),
        }
    }
    if problems.is_empty() {
        return Ok(Ok((loaded, resolved)));
    }
    let mut diagnostics = loaded.warnings;
    diagnostics.extend(problems);
    diagnostics.sort_by_key(|d| d.span.start);
    Ok(Err(LoadError {
        source_file: source.clone(),
        diagnostics,
    }))
}

fn summary(source: &SourceFile, plan: &kiln_pipeline::Plan) {
    let palette = Palette::stdout();
    let (jobs, levels) = (plan.jobs.len(), plan.levels.len());
    println!(
        "{} {}: {jobs} {}, {levels} {}",
        palette.paint(style::good(), "✓"),
        source.name,
        if jobs == 1 { "job" } else { "jobs" },
        if levels == 1 { "level" } else { "levels" },
    );
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
