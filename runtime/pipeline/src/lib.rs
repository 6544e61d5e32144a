//! kiln's pipeline language: YAML text in, a validated and expanded [`Plan`]
//! out, or every problem at once as [`Diagnostic`]s with spans.
//!
//! This crate is pure: no processes, no network, no clock. The only I/O is
//! `hashFiles()` reading the workspace when the engine evaluates it. It
//! depends on no other kiln crate; everything else depends on it.
#![warn(missing_docs)]

pub mod diagnostic;
pub mod expr;
pub mod plan;
pub mod source;
mod yaml;

pub use diagnostic::{Diagnostic, LoadError, Severity};
pub use plan::{FsAccess, Job, JobId, Permissions, Plan, RetryOn, RetryPolicy, Step, StepAction};
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

/// Parses, validates, interpolates and expands `source` into a [`Plan`].
///
/// Reports every problem in one pass: a file with five mistakes yields five
/// diagnostics, sorted by position.
pub fn load(source: &SourceFile, options: &LoadOptions) -> Result<Loaded, LoadError> {
    let _ = (source, options);
    todo!("parse → validate → plan")
}
