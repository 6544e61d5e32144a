//! `kiln artifacts list|get|verify|pin|unpin|gc`.

use std::path::Path;
use std::time::SystemTime;

use kiln_store::artifacts::retention::{self, BlobDrop, Policy, human_size};
use kiln_store::artifacts::{Artifacts, Error, Kind, Resolved};
use kiln_store::{RunId, Store};

use crate::args::{ArtifactsCommand, GcArgs, RunRef};
use crate::error::{CliError, EXIT_FAILED};
use crate::locate;
use crate::units;

impl From<Error> for CliError {
    fn from(err: Error) -> Self {
        CliError::Artifacts(err)
    }
}

/// Runs `kiln artifacts …`.
pub(crate) fn run(command: &ArtifactsCommand, state_dir: Option<&Path>) -> Result<u8, CliError> {
    let located = match state_dir {
        Some(_) => None,
        None => locate::pipeline(None).ok(),
    };
    let dir = locate::state_dir(state_dir, located.as_ref());
    if !dir.join(kiln_store::DATABASE_FILE).is_file() {
        return Err(CliError::Usage(format!(
            "no kiln state in `{}` yet: run a pipeline first (or pass --state-dir)",
            dir.display()
        )));
    }
    let mut store = Artifacts::open(&dir)?;
    let run_of = |r: &Option<RunRef>| -> Result<Option<RunId>, CliError> {
        match r {
            None => Ok(None),
            Some(RunRef::Id(id)) => Ok(Some(*id)),
            Some(RunRef::Last) => Ok(Store::open(&dir)?.last_run()?),
        }
    };
    match command {
        ArtifactsCommand::List { run, json } => list(&store, run_of(run)?, *json),
        ArtifactsCommand::Get { what, output, run } => {
            let artifact = match store.resolve(what, run_of(run)?)? {
                Resolved::Artifact(a) => Some(a),
                Resolved::Digest(_, found) => found,
            };
            let Some(artifact) = artifact else {
                return Err(CliError::Usage(format!(
                    "no artifact uses blob `{what}`; `kiln artifacts list` shows what is stored"
                )));
            };
            let bytes = store.export(&artifact, None, output)?;
            println!(
                "{} `{}` of run {} → {} ({})",
                if artifact.kind == Kind::File {
                    "wrote"
                } else {
                    "extracted"
                },
                artifact.name,
                artifact.run,
                output.display(),
                human_size(bytes)
            );
            Ok(0)
        }
        ArtifactsCommand::Verify => verify(&store),
        ArtifactsCommand::Pin { what, run } | ArtifactsCommand::Unpin { what, run } => {
            let digest = match store.resolve(what, run_of(run)?)? {
                Resolved::Artifact(a) => a.digest,
                Resolved::Digest(d, _) => d,
            };
            let pin = matches!(command, ArtifactsCommand::Pin { .. });
            let changed = if pin {
                store.pin(&digest)?
            } else {
                store.unpin(&digest)?
            };
            let verb = match (pin, changed) {
                (true, true) => "pinned",
                (true, false) => "already pinned:",
                (false, true) => "unpinned",
                (false, false) => "was not pinned:",
            };
            println!("{verb} sha256:{digest}");
            Ok(0)
        }
        ArtifactsCommand::Gc(args) => gc(&mut store, &dir, args),
    }
}

fn list(store: &Artifacts, run: Option<RunId>, json: bool) -> Result<u8, CliError> {
    let artifacts = store.list(run)?;
    if json {
        for a in &artifacts {
            println!("{}", serde_json::to_string(a).unwrap_or_default());
        }
        return Ok(0);
    }
    let now = SystemTime::now();
    if artifacts.is_empty() {
        println!("no artifacts stored");
    } else {
        let rows: Vec<[String; 7]> = artifacts
            .iter()
            .map(|a| {
                [
                    a.run.to_string(),
                    a.job.clone(),
                    a.name.clone(),
                    human_size(a.size),
                    format!(
                        "{}{}",
                        &a.digest.to_hex()[..12],
                        if a.pinned { " pinned" } else { "" }
                    ),
                    units::ago(a.created, now),
                    units::ago(a.accessed, now),
                ]
            })
            .collect();
        table(
            ["RUN", "JOB", "NAME", "SIZE", "DIGEST", "CREATED", "USED"],
            &rows,
        );
    }
    if run.is_none() {
        let caches = store.caches()?;
        if !caches.is_empty() {
            println!();
            let rows: Vec<[String; 5]> = caches
                .iter()
                .map(|c| {
                    [
                        c.key.clone(),
                        c.run.to_string(),
                        human_size(c.size()),
                        units::ago(c.created, now),
                        units::ago(c.accessed, now),
                    ]
                })
                .collect();
            table(["CACHE KEY", "RUN", "SIZE", "CREATED", "USED"], &rows);
        }
    }
    Ok(0)
}

/// Left-aligned columns, the last one unpadded.
fn table<const N: usize>(head: [&str; N], rows: &[[String; N]]) {
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(head.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn verify(store: &Artifacts) -> Result<u8, CliError> {
    let found = store.verify()?;
    let report = &found.report;
    let users = |digest| {
        found
            .users
            .iter()
            .find(|(d, _)| d == digest)
            .map(|(_, u)| u.join(", "))
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "not indexed".to_owned())
    };
    for (digest, actual) in &report.corrupt {
        println!(
            "corrupt    sha256:{digest} hashes to sha256:{actual}; used by {}",
            users(digest)
        );
    }
    for digest in &report.missing {
        println!("missing    sha256:{digest}; used by {}", users(digest));
    }
    for bad in &report.unreadable {
        println!("unreadable sha256:{}: {}", bad.digest, bad.reason);
    }
    for path in &report.stray {
        println!("stray      {} (not a blob; remove it)", path.display());
    }
    for digest in &report.orphaned {
        println!("orphaned   sha256:{digest} (nothing uses it; `kiln artifacts gc` removes it)");
    }
    let problems =
        report.corrupt.len() + report.missing.len() + report.unreadable.len() + report.stray.len();
    println!(
        "checked {} blobs ({}): {} corrupt, {} missing, {} orphaned, {} unreadable, {} stray",
        report.checked,
        human_size(report.bytes),
        report.corrupt.len(),
        report.missing.len(),
        report.orphaned.len(),
        report.unreadable.len(),
        report.stray.len()
    );
    Ok(if problems == 0 { 0 } else { EXIT_FAILED })
}

fn gc(store: &mut Artifacts, dir: &Path, args: &GcArgs) -> Result<u8, CliError> {
    let mut flags = Policy::default();
    let settings = [
        ("max-age", args.max_age.clone()),
        ("max-idle", args.max_idle.clone()),
        ("keep-runs", args.keep_runs.map(|n| n.to_string())),
        ("max-size", args.max_size.clone()),
    ];
    for (key, value) in settings {
        if let Some(value) = value {
            flags
                .set(key, &value)
                .map_err(|e| CliError::Usage(format!("--{key}: {e}")))?;
        }
    }
    let policy = Policy::load(&dir.join(retention::CONFIG_FILE))?.overridden_by(flags);
    let plan = store.gc(&policy, args.dry_run)?;
    let (keep, drop) = if args.dry_run {
        ("keep  ", "remove")
    } else {
        ("kept   ", "removed")
    };
    for entry in &plan.entries {
        match &entry.decision {
            Ok(why) => println!(
                "{keep} {} ({}): {why}",
                entry.subject,
                human_size(entry.size)
            ),
            Err(why) => println!(
                "{drop} {} ({}): {why}",
                entry.subject,
                human_size(entry.size)
            ),
        }
    }
    for (digest, size, why) in &plan.blobs {
        let why = match why {
            BlobDrop::Unreferenced => "no kept entry uses it",
            BlobDrop::Orphaned => "orphaned: no artifact or cache uses it",
        };
        println!(
            "{} blob sha256:{} ({}): {why}",
            if args.dry_run { "delete" } else { "deleted" },
            &digest.to_hex()[..12],
            human_size(*size)
        );
    }
    println!(
        "{} {} blobs, {}; {} kept",
        if args.dry_run { "would free" } else { "freed" },
        plan.blobs.len(),
        human_size(plan.freed()),
        human_size(plan.kept_bytes)
    );
    Ok(0)
}
