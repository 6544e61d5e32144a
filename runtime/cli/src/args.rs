//! The command line, as types (clap derive).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// kiln: run CI/CD pipelines locally, jobs in parallel, with a record of every run.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// State directory for run records and logs [default: `.kiln` in the workspace]
    #[arg(long, global = true, value_name = "DIR", env = "KILN_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check a pipeline file and report every problem in it
    Validate(ValidateArgs),
    /// Show the jobs, their dependencies, execution levels and the critical path
    Plan(PlanArgs),
    /// Run a pipeline
    Run(RunArgs),
    /// Inspect recorded runs
    #[command(subcommand)]
    Runs(RunsCommand),
    /// List, fetch, verify, pin and collect stored artifacts and caches
    #[command(subcommand)]
    Artifacts(ArtifactsCommand),
    /// Scaffold, build, install, list, inspect, remove and verify plugins
    #[command(subcommand)]
    Plugin(crate::command::plugin::PluginCommand),
    /// Inspect, resume, roll back and simulate deployments
    #[command(subcommand)]
    Deploy(DeployCommand),
    /// Approve a deployment's approval gate (from any terminal)
    Approve(GateArgs),
    /// Reject a deployment's approval gate: the rollout rolls back
    Reject(GateArgs),
    /// Remove containers, networks and volumes left by runs that are over
    Gc,
}

/// `kiln approve RUN GATE`.
#[derive(Debug, Args)]
pub(crate) struct GateArgs {
    /// The run whose rollout waits (its number, as `kiln run` printed it)
    pub run: i64,
    /// The gate's name (`promote` for `approval: manual`)
    pub gate: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeployCommand {
    /// Finish rollouts a killed kiln left behind: a decided promotion, else a rollback
    Resume {
        /// Only this service [default: every service]
        service: Option<String>,
    },
    /// List a service's rollouts with their outcomes, newest first
    History {
        /// Service name
        service: String,
    },
    /// Switch a service back to the version that served before the current one
    Rollback {
        /// Service name
        service: String,
    },
    /// Stop every instance of a service and its proxy
    Stop {
        /// Service name
        service: String,
    },
    /// Dry run: a strategy against a JSON script of observations; prints the decisions
    Simulate {
        /// The script (see docs/deploy.md)
        script: PathBuf,
        /// Strategy reference
        #[arg(long, default_value = "kiln/rolling@1")]
        strategy: String,
    },
    /// Serve a service's proxy (started by kiln itself)
    #[command(hide = true)]
    Proxy {
        /// Loopback listener
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// Control socket
        #[arg(long)]
        socket: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ArtifactsCommand {
    /// List stored artifacts (newest run first) and caches
    List {
        /// Only this run's artifacts (a number or `last`)
        #[arg(long)]
        run: Option<RunRef>,
        /// Print one JSON object per artifact instead
        #[arg(long)]
        json: bool,
    },
    /// Write an artifact (by name, newest run first, or by digest) to a path
    Get {
        /// Artifact name or `sha256:` digest
        what: String,
        /// Where to write it: the file for a file artifact, a directory to extract a tree into
        #[arg(long, short = 'o', value_name = "PATH")]
        output: PathBuf,
        /// Take the artifact from this run
        #[arg(long)]
        run: Option<RunRef>,
    },
    /// Re-hash every blob; report corrupt, missing, orphaned and stray files (exit 1 unless clean)
    Verify,
    /// Protect an artifact's blob from `gc`
    Pin {
        /// Artifact name or `sha256:` digest
        what: String,
        /// Take the artifact from this run
        #[arg(long)]
        run: Option<RunRef>,
    },
    /// Remove a pin
    Unpin {
        /// Artifact name or `sha256:` digest
        what: String,
        /// Take the artifact from this run
        #[arg(long)]
        run: Option<RunRef>,
    },
    /// Apply the retention policy (`.kiln/retention.conf`, overridden by flags)
    Gc(GcArgs),
}

#[derive(Debug, Args)]
pub(crate) struct GcArgs {
    /// Print the plan with a reason for every entry and blob; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Drop entries created longer ago than this (`30d`, `12h`, `0s`)
    #[arg(long, value_name = "DURATION")]
    pub max_age: Option<String>,
    /// Drop entries not downloaded or restored for this long
    #[arg(long, value_name = "DURATION")]
    pub max_idle: Option<String>,
    /// Keep only the artifacts of the newest N runs (and newest N caches) per pipeline
    #[arg(long, value_name = "N")]
    pub keep_runs: Option<u32>,
    /// Drop least recently used entries until the store holds at most this (`10GiB`)
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
}

/// `kiln plugin new`.
#[derive(Debug, Args)]
pub(crate) struct PluginNewArgs {
    /// The plugin's language
    #[arg(long, value_enum, default_value_t = PluginLang::Rust)]
    pub lang: PluginLang,
    /// Name of the plugin and its directory (lowercase, digits, `-`)
    pub name: String,
}

/// `kiln plugin new --lang`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PluginLang {
    /// kiln-sdk over wit-bindgen, built with cargo
    Rust,
    /// kiln_plugin.py, built with componentize-py
    Python,
}

#[derive(Debug, Args)]
pub(crate) struct PluginBuildArgs {
    /// The project directory [default: the current directory]
    pub dir: Option<PathBuf>,
}

/// Selects the pipeline file.
#[derive(Debug, Args)]
pub(crate) struct FileArg {
    /// Pipeline file [default: `kiln.yml`, else `.kiln.yml`, else `.dcanary/pipeline.yml`]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Print the diagnostics as one JSON array on stdout
    #[arg(long)]
    pub json: bool,
    /// Set a variable for `${VAR}` interpolation (repeatable)
    #[arg(long = "var", value_name = "K=V", value_parser = parse_pair)]
    pub vars: Vec<(String, String)>,
    /// Also resolve every plugin and require it to match kiln.lock exactly
    #[arg(long)]
    pub locked: bool,
    /// Also check that every image the pipeline names is present in the local Docker engine (never pulls)
    #[arg(long)]
    pub check_images: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Output format
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Set a variable for `${VAR}` interpolation (repeatable)
    #[arg(long = "var", value_name = "K=V", value_parser = parse_pair)]
    pub vars: Vec<(String, String)>,
}

/// `kiln plan --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PlanFormat {
    /// Levels, needs and critical path, for people
    Text,
    /// Jobs with needs, levels and critical path, for programs
    Json,
    /// A Graphviz digraph (`kiln plan --format dot | dot -Tsvg`)
    Dot,
    /// A Mermaid flowchart (`graph TD`)
    Mermaid,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Run only this job and the jobs it needs (repeatable; a job key or a matrix instance name)
    #[arg(long = "job", short = 'j', value_name = "JOB")]
    pub jobs: Vec<String>,
    /// Set a variable for `${VAR}` interpolation (repeatable)
    #[arg(long = "var", value_name = "K=V", value_parser = parse_pair)]
    pub vars: Vec<(String, String)>,
    /// Provide a secret (repeatable). Visible in `ps`: prefer --secret-file or KILN_SECRET_<NAME>
    #[arg(long = "secret", value_name = "K=V", value_parser = parse_pair)]
    pub secrets: Vec<(String, String)>,
    /// Read secrets from a file of `KEY=VALUE` lines (repeatable)
    #[arg(long = "secret-file", value_name = "FILE")]
    pub secret_files: Vec<PathBuf>,
    /// How many jobs may run at once [default: number of CPUs]
    #[arg(long = "jobs", short = 'J', value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel: Option<u32>,
    /// Print one JSON event per line on stdout instead of the terminal view
    #[arg(long)]
    pub json: bool,
    /// After Ctrl-C, how long steps get to exit after SIGTERM before SIGKILL
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub grace: Option<Duration>,
    /// Refuse plugins that kiln.lock does not pin, or that resolve to other content
    #[arg(long)]
    pub locked: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RunsCommand {
    /// List recent runs, newest first
    List {
        /// How many runs to show
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: usize,
    },
    /// Show one run's jobs and steps
    Show {
        /// Run number (or `last`)
        run: RunRef,
    },
    /// Print a run's step logs, job-prefixed, in job and step order
    Logs {
        /// Run number (or `last`)
        run: RunRef,
        /// Only this job's logs (its name or key; repeatable)
        #[arg(long = "job", short = 'j', value_name = "JOB")]
        jobs: Vec<String>,
    },
}

/// A run as the user names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunRef {
    /// `kiln runs show 7`
    Id(i64),
    /// `kiln runs show last`
    Last,
}

impl std::str::FromStr for RunRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "last" {
            return Ok(Self::Last);
        }
        match s.parse::<i64>() {
            Ok(id) if id > 0 => Ok(Self::Id(id)),
            _ => Err(format!(
                "`{s}` is not a run number (expected e.g. `7` or `last`)"
            )),
        }
    }
}

/// `K=V` → `(K, V)`; the key must be a plain identifier.
fn parse_pair(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected `KEY=VALUE`, got `{}`", first_chars(text)))?;
    check_name(key)?;
    Ok((key.to_owned(), value.to_owned()))
}

/// Only the start of a value is echoed back: it may be a secret pasted
/// without its `KEY=`.
fn first_chars(text: &str) -> String {
    match text.char_indices().nth(3) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// Names are identifiers: `[A-Za-z_][A-Za-z0-9_]*`, so they are valid env var names.
pub(crate) fn check_name(key: &str) -> Result<(), String> {
    let mut chars = key.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{key}` is not a valid name (letters, digits and `_`, not starting with a digit)"
        ))
    }
}

/// `500ms`, `5s`, `2m`, `1h`, or bare seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration (e.g. `10s`, `500ms`, `2m`)");
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = text[..digits].parse().map_err(|_| bad())?;
    let unit = match &text[digits..] {
        "" | "s" => Duration::from_secs(1),
        "ms" => Duration::from_millis(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return Err(bad()),
    };
    unit.checked_mul(u32::try_from(n).map_err(|_| bad())?)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs() {
        assert_eq!(parse_pair("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert_eq!(parse_pair("A="), Ok(("A".into(), String::new())));
        assert_eq!(
            parse_pair("hunter2"),
            Err("expected `KEY=VALUE`, got `hun…`".into())
        );
        assert_eq!(
            parse_pair("1A=x"),
            Err(
                "`1A` is not a valid name (letters, digits and `_`, not starting with a digit)"
                    .into()
            )
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(
            parse_duration("soon"),
            Err("`soon` is not a duration (e.g. `10s`, `500ms`, `2m`)".into())
        );
    }

    #[test]
    fn run_refs() {
        assert_eq!("7".parse(), Ok(RunRef::Id(7)));
        assert_eq!("last".parse(), Ok(RunRef::Last));
        assert_eq!(
            "0".parse::<RunRef>(),
            Err("`0` is not a run number (expected e.g. `7` or `last`)".into())
        );
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
