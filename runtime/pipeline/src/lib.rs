//! kiln's pipeline language: YAML text in, a validated and expanded [`Plan`]
//! out, or every problem at once as [`Diagnostic`]s with spans.
//!
//! This crate is pure: no processes, no network, no clock. The only I/O is
//! `hashFiles()` reading the workspace when the engine evaluates it. It
//! depends on no other kiln crate; everything else depends on it.
#![warn(missing_docs)]

pub mod artifact;
mod assemble;
mod ast;
pub mod container;
mod decode;
pub mod diagnostic;
mod duration;
pub mod expr;
mod graph;
mod lower;
mod matrix;
pub mod plan;
mod select;
pub mod source;
mod suggest;
pub mod vars;
mod yaml;

#[cfg(test)]
mod tests;

pub use container::{
    ContainerOptions, HealthCheck, Network, PullPolicy, Resources, Service, Volume,
};
pub use diagnostic::{Diagnostic, LoadError, Severity};
pub use plan::{
    ArtifactSpec, CacheSpec, Deploy, DeployRun, DeployTarget, FsAccess, Job, JobId, Permissions,
    Plan, PluginUse, ProxyConfig, Readiness, RetryOn, RetryPolicy, Step, StepAction, Sticky,
    UsesSpans,
};
pub use select::SelectError;
pub use source::{SourceFile, Span};

use std::collections::BTreeMap;

/// Inputs to loading that do not come from the file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--var K=V` values: highest precedence for `${VAR}` interpolation and
    /// the `vars` context.
    pub vars: BTreeMap<String, String>,
    /// The process environment, lowest precedence for `${VAR}`.
    pub system_env: BTreeMap<String, String>,
}

/// A pipeline that loaded, with any warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The runnable plan.
    pub plan: Plan,
    /// Non-fatal diagnostics (seed features handled by later milestones, …).
    pub warnings: Vec<Diagnostic>,
}

/// The largest pipeline file [`load`] accepts, in bytes (10 MiB). A caller
/// reading a file should stop reading past it: the file may be endless.
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;

/// The shells kiln knows to be POSIX-like: named alone in `shell:`, they
/// get `-e` added, and they accept a script as `-c TEXT`.
pub const POSIX_SHELLS: [&str; 5] = ["sh", "bash", "dash", "zsh", "ksh"];

/// Parses, validates, interpolates and expands `source` into a [`Plan`].
///
/// Reports every problem in one pass: a file with five mistakes yields five
/// diagnostics, sorted by position. YAML syntax errors and the hostile-input
/// limits (10 MiB, nesting depth 256, 1,000,000 nodes copied by aliases)
/// stop at the first problem, since nothing after them can be trusted.
///
/// Cost: linear in the file size and in jobs + `needs` edges; a 1,000-job
/// pipeline loads in a few milliseconds.
pub fn load(source: &SourceFile, options: &LoadOptions) -> Result<Loaded, LoadError> {
    let fail = |diagnostics| LoadError {
        source_file: source.clone(),
        diagnostics: tidy(diagnostics),
    };
    let document = yaml::parse(&source.text, yaml::Limits::default()).map_err(|d| fail(vec![d]))?;
    let mut diagnostics = document.diagnostics;
    let mut decoder = decode::Decoder::default();
    let pipeline = decode::decode(document.root.as_ref(), &mut decoder);
    // Each stage's input goes as soon as the next has what it needs, so
    // the later stages reuse its memory: fresh heap pages were half the
    // time of loading a large file (page faults).
    drop(document.root);
    diagnostics.append(&mut decoder.diagnostics);
    let lines = yaml::LineIndex::new(&source.text);
    let (header, lowered) = lower::lower(&pipeline, options, &lines, &mut diagnostics);
    let needs = graph::resolve(&pipeline.jobs, &mut diagnostics);
    let lowered: Option<Vec<_>> = lowered.into_iter().collect();
    let lowered = match lowered {
        Some(l) if !diagnostics.iter().any(|d| d.severity == Severity::Error) => l,
        _ => return Err(fail(diagnostics)),
    };
    let name = assemble::plan_name(
        pipeline.name.as_ref().map(|t| t.value.as_str()),
        &source.name,
    );
    let timeout = pipeline.timeout;
    drop(pipeline);
    let plan = assemble::plan(name, header.env, timeout, lowered, &needs);
    Ok(Loaded {
        plan,
        warnings: tidy(diagnostics),
    })
}

/// Sorts by position and drops exact repeats (an alias copies a node, so a
/// problem inside an anchored block would otherwise be reported per use).
fn tidy(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diagnostics.sort_by_key(|d| (d.span.start, d.span.end));
    diagnostics.dedup_by(|a, b| a.code == b.code && a.span == b.span && a.message == b.message);
    diagnostics
}
