//! Diagnostics: everything wrong with a pipeline, as data.
//!
//! The library never renders these; the CLI turns them into a code frame
//! with `file:line:col`, the message, a label under the span and the help.

use crate::source::{SourceFile, Span};

/// One problem found in a pipeline file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Stable, kebab-case identifier (`unknown-field`, `dependency-cycle`);
    /// documented in `docs/pipeline.md` and safe to match on in tests.
    pub code: &'static str,
    /// What is wrong, lowercase, values in backticks.
    pub message: String,
    /// Where: the narrowest span that shows the problem.
    pub span: Span,
    /// Short text shown under the span in the code frame.
    pub label: Option<String>,
    /// How to fix it (`did you mean `needs`?`).
    pub help: Option<String>,
    /// Errors stop the run; warnings are reported and the run goes on.
    pub severity: Severity,
}

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The pipeline cannot run.
    Error,
    /// The pipeline runs, but something is probably not what the author meant
    /// (for example a seed feature that a later kiln version implements).
    Warning,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            span,
            label: None,
            help: None,
            severity: Severity::Error,
        }
    }

    /// A warning at `span`.
    pub fn warning(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, span, message)
        }
    }

    /// Sets the label shown under the span.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets the fix hint.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// A pipeline that could not be loaded: the file and every problem in it,
/// in source order.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{}` has {} problem(s)", source_file.name, diagnostics.len())]
pub struct LoadError {
    /// The file the spans point into.
    pub source_file: SourceFile,
    /// All diagnostics (errors and warnings), sorted by position.
    pub diagnostics: Vec<Diagnostic>,
}
