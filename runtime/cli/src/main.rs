//! The `kiln` binary: argument parsing, wiring and reporters. Everything a
//! user sees is printed here; the libraries return data.

mod args;
mod command;
mod containers;
mod deploy_plugins;
mod diagnostics;
mod error;
mod locate;
mod plan_view;
mod plugin_artifacts;
mod plugins;
mod record;
mod reporter;
mod secrets;
mod store_adapter;
mod style;
mod units;

use std::error::Error as _;
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::error::CliError;
use crate::style::Palette;

fn main() -> ExitCode {
    // clap exits with 2 on usage errors and 0 for --help/--version.
    let cli = Cli::parse();
    init_tracing();
    let result = match &cli.command {
        Command::Validate(args) => command::validate::run(args),
        Command::Plan(args) => command::plan::run(args),
        Command::Run(args) => command::run::run(args, cli.state_dir.as_deref()),
        Command::Runs(runs) => command::runs::run(runs, cli.state_dir.as_deref()),
        Command::Artifacts(artifacts) => {
            command::artifacts::run(artifacts, cli.state_dir.as_deref())
        }
        Command::Plugin(plugin) => command::plugin::run(plugin),
        Command::Deploy(deploy) => command::deploy::run(deploy, cli.state_dir.as_deref()),
        Command::Approve(gate) => command::deploy::answer(gate, true, cli.state_dir.as_deref()),
        Command::Reject(gate) => command::deploy::answer(gate, false, cli.state_dir.as_deref()),
        Command::Gc => command::gc::run(cli.state_dir.as_deref()),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            report(&err);
            ExitCode::from(err.exit_code())
        }
    }
}

/// kiln's own diagnostics (`KILN_LOG=debug`), on stderr, off by default.
fn init_tracing() {
    let Ok(filter) = std::env::var("KILN_LOG") else {
        return;
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(Palette::stderr().enabled())
        .try_init();
}

/// Prints a command's error on stderr: diagnostics as code frames, anything
/// else as `error: …` with its causes.
fn report(err: &CliError) {
    let palette = Palette::stderr();
    if let CliError::Load(load) = err {
        eprint!(
            "{}",
            diagnostics::render(&load.source_file, &load.diagnostics, palette)
        );
        let errors = load
            .diagnostics
            .iter()
            .filter(|d| d.severity == kiln_pipeline::Severity::Error)
            .count();
        eprintln!(
            "{}: `{}` has {errors} {}",
            palette.paint(style::bad(), "error"),
            load.source_file.name,
            if errors == 1 { "error" } else { "errors" }
        );
        return;
    }
    eprintln!("{}: {err}", palette.paint(style::bad(), "error"));
    let mut cause = err.source();
    while let Some(inner) = cause {
        eprintln!("  caused by: {inner}");
        cause = inner.source();
    }
}
