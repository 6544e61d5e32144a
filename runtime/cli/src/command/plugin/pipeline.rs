//! A pipeline's `uses:` references: checked as syntax by every `validate`
//! and `run`, resolved against `kiln.lock` before a run starts (and by
//! `validate --locked`). Problems become diagnostics at the reference, so
//! they render like every other pipeline error, with `file:line:col`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kiln_fetch::{Component, LockChange, Lockfile, Mode, Reference, Resolver};
use kiln_pipeline::{Diagnostic, Plan, SourceFile, Span, StepAction};

use crate::error::CliError;
use crate::locate::Located;

/// Diagnostic code of a `uses:` string that is not a reference.
const INVALID: &str = "invalid-plugin-reference";
/// Diagnostic code of a reference `kiln.lock` does not allow (`--locked`).
const LOCK: &str = "plugin-lock";
/// Diagnostic code of a reference that could not be fetched or verified.
const UNRESOLVED: &str = "plugin-unresolved";

/// Each distinct component reference of the plan, once (matrix instances
/// share a step), with where it is written: `uses:` steps and the strategy
/// and health check of `deploy:` jobs.
fn uses_steps(plan: &Plan, source: &SourceFile) -> Vec<(String, Span)> {
    let mut seen = BTreeMap::new();
    for job in &plan.jobs {
        for step in &job.steps {
            match &step.action {
                StepAction::Uses { reference, .. } => {
                    seen.entry((step.span.start, reference.clone()))
                        .or_insert_with(|| reference_span(source, step.span, reference));
                }
                StepAction::Deploy(deploy) => {
                    for used in std::iter::once(&deploy.strategy).chain(&deploy.health) {
                        seen.entry((used.spans.reference.start, used.uses.clone()))
                            .or_insert(used.spans.reference);
                    }
                }
                _ => {}
            }
        }
    }
    seen.into_iter().map(|((_, r), span)| (r, span)).collect()
}

/// The syntax check: one diagnostic per `uses:` string that does not parse.
pub(crate) fn check(plan: &Plan, source: &SourceFile) -> Vec<Diagnostic> {
    uses_steps(plan, source)
        .into_iter()
        .filter_map(|(text, span)| {
            let err = Reference::parse(&text).err()?;
            Some(
                Diagnostic::error(
                    INVALID,
                    span,
                    format!("`{text}` is not a plugin reference: {}", err.problem),
                )
                .with_label("not a plugin reference")
                .with_help(err.help),
            )
        })
        .collect()
}

/// The verified components of a pipeline, by reference as written.
pub(crate) type Components = BTreeMap<String, Component>;

/// The components of `plan` that resolve without a network (for `kiln
/// validate`): local files, bundled plugins, and remote references that
/// `kiln.lock` pins and the plugin store holds. References that do not
/// resolve so are left out; loading reports them.
pub(crate) fn fetch_offline(plan: &Plan, source: &SourceFile, located: &Located) -> Components {
    let client = kiln_fetch::Client::new();
    let lock = Lockfile::load(&lock_path(located)).ok();
    // Only an existing store is read: validating creates nothing, and a
    // store that was never created holds nothing pinned.
    let store = kiln_fetch::home::plugin_dir(|name| std::env::var_os(name))
        .filter(|dir| dir.is_dir() && lock.as_ref().is_some_and(|l| l.pins().next().is_some()))
        .and_then(|dir| kiln_fetch::PluginStore::open(&dir).ok());
    let resolver = match &store {
        Some(store) => Resolver::new(store, &client, super::bundled(), &located.workspace),
        None => Resolver::without_store(&client, super::bundled(), &located.workspace),
    };
    let mut components = Components::new();
    for (text, _) in uses_steps(plan, source) {
        let Ok(reference) = Reference::parse(&text) else {
            continue;
        };
        let found = match &reference {
            Reference::Local { .. } | Reference::Bundled { .. } => resolver.fetch(&reference).ok(),
            Reference::Https { .. } | Reference::Oci(_) => lock
                .as_ref()
                .and_then(|lock| resolver.pinned_in_store(&reference, lock)),
        };
        if let Some(component) = found {
            components.insert(text, component);
        }
    }
    components
}

/// Resolves every `uses:` of `plan` against `kiln.lock` beside the
/// pipeline, writing new pins unless `mode` is [`Mode::Locked`]. Every
/// problem is returned at once, as diagnostics; on any problem the lock is
/// left as it was.
pub(crate) fn resolve(
    plan: &Plan,
    source: &SourceFile,
    located: &Located,
    mode: Mode,
) -> Result<Components, CliError> {
    let steps = uses_steps(plan, source);
    let mut diagnostics = check(plan, source);
    if steps.is_empty() || !diagnostics.is_empty() {
        return finish(source, diagnostics).map(|()| Components::new());
    }
    // Local files and bundled plugins need no store: a pipeline that uses
    // only those works without a home directory and creates nothing there.
    let remote = steps.iter().any(|(text, _)| {
        matches!(
            Reference::parse(text),
            Ok(Reference::Https { .. } | Reference::Oci(_))
        )
    });
    let store = if remote {
        Some(super::open_store()?)
    } else {
        None
    };
    let client = kiln_fetch::Client::new();
    let resolver = match &store {
        Some(store) => Resolver::new(store, &client, super::bundled(), &located.workspace),
        None => Resolver::without_store(&client, super::bundled(), &located.workspace),
    };
    let mut lock = Lockfile::load(&lock_path(located))?;
    let mut components = Components::new();
    let mut notices = Vec::new();
    for (text, span) in steps {
        if components.contains_key(&text) {
            continue;
        }
        let reference = Reference::parse(&text).expect("checked above");
        match resolver.resolve(&reference, &mut lock, mode) {
            Ok((component, change)) => {
                notices.extend(notice(&reference, &component, change, &lock));
                components.insert(text, component);
            }
            // A local component an earlier job builds: loading warns and
            // reads it when its step runs. `--locked` cannot verify it then.
            Err(kiln_fetch::Error::Local { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && mode != Mode::Locked => {}
            Err(err) => diagnostics.push(diagnostic(&err, span)),
        }
    }
    finish(source, diagnostics)?;
    lock.save()?;
    for line in notices {
        eprintln!("{line}");
    }
    Ok(components)
}

/// `kiln.lock` in the directory that holds the pipeline file, spelled
/// relative to the pipeline path as given (`ci/kiln.lock`), for messages.
pub(crate) fn lock_path(located: &Located) -> PathBuf {
    let dir = located.path.parent().map(PathBuf::from).unwrap_or_default();
    Lockfile::path_in(&dir)
}

fn finish(source: &SourceFile, diagnostics: Vec<Diagnostic>) -> Result<(), CliError> {
    if diagnostics.is_empty() {
        return Ok(());
    }
    Err(CliError::Load(kiln_pipeline::LoadError {
        source_file: source.clone(),
        diagnostics,
    }))
}

fn notice(
    reference: &Reference,
    component: &Component,
    change: LockChange,
    lock: &Lockfile,
) -> Option<String> {
    let lock = lock.path().file_name()?.to_string_lossy().into_owned();
    match change {
        LockChange::None => None,
        LockChange::Pinned => Some(format!(
            "pinned `{reference}` to sha256:{} in {lock}",
            component.digest
        )),
        LockChange::Repinned { old } => Some(format!(
            "`{reference}` changed: re-pinned sha256:{old} → sha256:{} in {lock}",
            component.digest
        )),
    }
}

/// A resolution error as a diagnostic: the message up to the first `; `,
/// the rest (how to fix it) as help; causes appended.
fn diagnostic(err: &kiln_fetch::Error, span: Span) -> Diagnostic {
    let code = match err {
        kiln_fetch::Error::Unpinned { .. } | kiln_fetch::Error::PinMismatch(_) => LOCK,
        _ => UNRESOLVED,
    };
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(err);
    while let Some(inner) = cause {
        text.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    let (message, help) = match text.split_once("; ") {
        Some((message, help)) => (message.to_owned(), Some(help.to_owned())),
        None => (text, None),
    };
    let label = if code == LOCK {
        "not as pinned"
    } else {
        "cannot use this plugin"
    };
    let diagnostic = Diagnostic::error(code, span, message).with_label(label);
    match help {
        Some(help) => diagnostic.with_help(help),
        None => diagnostic,
    }
}

/// The span of the reference text inside the step (the step's own span
/// covers the whole mapping, too wide for a code frame).
fn reference_span(source: &SourceFile, step: Span, reference: &str) -> Span {
    let text = &source.text[step.start.min(source.text.len())..step.end.min(source.text.len())];
    let found = text
        .find("uses")
        .and_then(|at| text[at..].find(reference).map(|i| at + i));
    let Some(offset) = found else {
        return step;
    };
    let start = step.start + offset;
    let before = &source.text[..start];
    let line = before.matches('\n').count() as u32 + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() as u32 + 1;
    Span {
        start,
        end: start + reference.len(),
        line,
        col,
    }
}
