//! `kiln runs list|show|logs`: reading the run records back.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use kiln_store::{JobRecord, RunDetails, RunId, RunStatus, Store};

use crate::args::{RunRef, RunsCommand};
use crate::error::CliError;
use crate::locate;
use crate::style::{self, Palette};
use crate::units;

/// Runs `kiln runs …`.
pub(crate) fn run(command: &RunsCommand, state_dir: Option<&Path>) -> Result<u8, CliError> {
    // Runs belong to the project: find it the way `kiln run` would.
    let located = match state_dir {
        Some(_) => None,
        None => locate::pipeline(None).ok(),
    };
    let dir = locate::state_dir(state_dir, located.as_ref());
    let store = if dir.join(kiln_store::DATABASE_FILE).is_file() {
        Some(Store::open(&dir)?)
    } else {
        None
    };
    let palette = Palette::stdout();
    match command {
        RunsCommand::List { limit } => {
            match store {
                Some(store) => list(&store.list_runs(*limit)?, palette),
                None => println!("no runs recorded in `{}` yet", dir.display()),
            }
            Ok(0)
        }
        RunsCommand::Show { run } => {
            let store = store.ok_or_else(|| no_runs(&dir))?;
            let details = store.run_details(resolve(&store, *run, &dir)?)?;
            show(&details, palette);
            Ok(0)
        }
        RunsCommand::Logs { run, jobs } => {
            let store = store.ok_or_else(|| no_runs(&dir))?;
            let details = store.run_details(resolve(&store, *run, &dir)?)?;
            logs(&details, jobs, store.root(), palette)
        }
    }
}

fn no_runs(dir: &Path) -> CliError {
    CliError::Usage(format!("no runs recorded in `{}` yet", dir.display()))
}

fn resolve(store: &Store, run: RunRef, dir: &Path) -> Result<RunId, CliError> {
    match run {
        RunRef::Id(id) => Ok(id),
        RunRef::Last => store.last_run()?.ok_or_else(|| no_runs(dir)),
    }
}

pub(crate) fn status_style(status: &str) -> owo_colors::Style {
    match status {
        "success" => style::good(),
        "failed" | "timed_out" | "interrupted" => style::bad(),
        "running" | "cancelled" => style::warn(),
        _ => style::dim(),
    }
}

/// Pads `text` to `width` characters, then paints it (padding first, so
/// escape codes never count towards the width).
fn cell(palette: Palette, style: owo_colors::Style, text: &str, width: usize) -> String {
    palette.paint(style, &format!("{text:<width$}"))
}

fn list(runs: &[kiln_store::RunSummary], palette: Palette) {
    let now = SystemTime::now();
    let width = runs
        .iter()
        .map(|r| r.pipeline.chars().count())
        .max()
        .unwrap_or(0)
        .max(8);
    println!(
        "{:>5}  {:<width$}  {:<11}  {:<10}  DURATION",
        "RUN", "PIPELINE", "STATUS", "STARTED"
    );
    for run in runs {
        let duration = match (run.status, run.duration) {
            (_, Some(d)) => units::duration(d),
            (RunStatus::Running, None) => {
                units::duration(now.duration_since(run.started).unwrap_or_default())
            }
            _ => "-".to_owned(),
        };
        println!(
            "{:>5}  {:<width$}  {}  {:<10}  {duration}",
            run.id,
            run.pipeline,
            cell(
                palette,
                status_style(run.status.as_str()),
                run.status.as_str(),
                11
            ),
            units::ago(run.started, now),
        );
    }
}

fn show(details: &RunDetails, palette: Palette) {
    let run = &details.run;
    let duration = run.duration.map_or_else(|| "-".to_owned(), units::duration);
    println!(
        "run {} · {} · {} · started {} · {duration}",
        run.id,
        run.pipeline,
        palette.paint(status_style(run.status.as_str()), run.status.as_str()),
        units::ago(run.started, SystemTime::now()),
    );
    println!("file: {}\n", run.file);
    let width = details
        .jobs
        .iter()
        .map(|j| j.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(3);
    println!(
        "{:<width$}  {:<11}  {:>8}  {:>8}  REASON",
        "JOB", "RESULT", "ATTEMPTS", "DURATION"
    );
    for job in &details.jobs {
        let result = job.result.as_deref().unwrap_or("not run");
        println!(
            "{:<width$}  {}  {:>8}  {:>8}  {}",
            job.name,
            cell(palette, status_style(result), result, 11),
            job.attempts,
            job.duration.map_or_else(|| "-".to_owned(), units::duration),
            job.reason.as_deref().unwrap_or(""),
        );
        for step in &job.steps {
            let attempt = if job.attempts > 1 {
                format!(" [attempt {}]", step.attempt)
            } else {
                String::new()
            };
            let exit = step
                .exit_code
                .map(|c| format!(" (exit {c})"))
                .unwrap_or_default();
            let result = step.result.as_deref().unwrap_or("running");
            println!(
                "  {}. {}{attempt}: {}{exit} {}",
                step.index + 1,
                step.name,
                palette.paint(status_style(result), result),
                step.duration.map_or_else(String::new, units::duration),
            );
        }
    }
}

/// Whether `filter` names `job`: its full name, or its key (a matrix job
/// `test (shard=1)` is selected by `test`).
fn selects(filter: &str, job: &JobRecord) -> bool {
    job.name == filter
        || job
            .name
            .strip_prefix(filter)
            .is_some_and(|rest| rest.starts_with(" ("))
}

fn logs(
    details: &RunDetails,
    filters: &[String],
    root: &Path,
    palette: Palette,
) -> Result<u8, CliError> {
    for filter in filters {
        if !details.jobs.iter().any(|j| selects(filter, j)) {
            let names: Vec<&str> = details.jobs.iter().map(|j| j.name.as_str()).collect();
            return Err(CliError::Usage(format!(
                "run {} has no job `{filter}`; its jobs are: {}",
                details.run.id,
                names.join(", ")
            )));
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for job in &details.jobs {
        if !filters.is_empty() && !filters.iter().any(|f| selects(f, job)) {
            continue;
        }
        let prefix = palette.paint(palette.job_style(&job.name), &format!("[{}]", job.name));
        // Attempts of a step share one file; print each file once.
        let mut seen: Vec<&PathBuf> = Vec::new();
        for log in job.steps.iter().filter_map(|s| s.log.as_ref()) {
            if seen.contains(&log) {
                continue;
            }
            seen.push(log);
            let path = root.join(log);
            let text = match std::fs::read(&path) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                // A step that printed nothing has no log file.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => {
                    eprintln!("warning: cannot read `{}`: {err}", path.display());
                    continue;
                }
            };
            for line in text.lines() {
                // A closed pipe (`| head`) is not an error worth reporting.
                if writeln!(out, "{prefix} {line}").is_err() {
                    return Ok(0);
                }
            }
        }
    }
    Ok(0)
}
