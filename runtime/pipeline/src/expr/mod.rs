//! `${{ }}` expressions: a small, total interpreter with GitHub Actions
//! semantics.
//!
//! INTERFACE CONTRACT (other crates rely on these signatures; bodies are filled
//! in by the expression work):
//! - [`Expr::parse`] parses the text between `${{` and `}}`.
//! - [`Template::parse`] splits a string into literal text and expressions.
//! - [`Expr::eval`] / [`Template::render`] evaluate against a [`Context`].
//! - [`Template::references`] lists `context.name` pairs used (so the engine
//!   injects only referenced secrets, and validation checks `needs.<job>`).

use std::path::Path;

use serde_json::Value;

use crate::source::Span;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// Original text, for display.
    pub text: String,
    // The AST is private to the expression module.
}

/// A string with `${{ }}` expressions in it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Template {
    /// Original text.
    pub text: String,
}

/// A problem in an expression, with a span relative to the parsed text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    /// What is wrong.
    pub message: String,
    /// Byte range inside the expression text.
    pub offset: std::ops::Range<usize>,
    /// How to fix it.
    pub help: Option<String>,
}

/// Status of the enclosing job/run, for `success() failure() always() cancelled()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Status {
    /// Nothing before has failed.
    #[default]
    Success,
    /// A previous step (or needed job) failed.
    Failure,
    /// The run is being cancelled.
    Cancelled,
}

/// What an expression can see.
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    /// Top-level contexts by name: `env`, `vars`, `matrix`, `needs`, `steps`,
    /// `git`, `secrets`, `inputs`, `job`.
    pub values: serde_json::Map<String, Value>,
    /// For the status functions.
    pub status: Status,
    /// Root for `hashFiles`; `None` makes `hashFiles` return `''`.
    pub workspace: Option<&'a Path>,
}

impl Expr {
    /// Parses expression text (without `${{ }}`).
    pub fn parse(_text: &str) -> Result<Self, ExprError> {
        todo!("expression parser")
    }

    /// Evaluates; never panics, errors only for run-time type problems such
    /// as `fromJSON` of invalid JSON.
    pub fn eval(&self, _cx: &Context<'_>) -> Result<Value, ExprError> {
        todo!("expression evaluator")
    }
}

impl Template {
    /// Splits `text` into literals and `${{ }}` expressions.
    pub fn parse(_text: &str) -> Result<Self, ExprError> {
        todo!("template parser")
    }

    /// Renders: each expression's value as GitHub formats it (strings as-is,
    /// numbers canonical, null as '', objects as JSON).
    pub fn render(&self, _cx: &Context<'_>) -> Result<String, ExprError> {
        todo!("template renderer")
    }

    /// `(context, first property)` pairs referenced, e.g. `("secrets", "TOKEN")`,
    /// `("needs", "build")`.
    pub fn references(&self) -> Vec<(String, String)> {
        todo!("reference walker")
    }
}

/// Marks where a template was found, to turn an [`ExprError`] into a
/// diagnostic.
pub fn error_span(base: Span, _err: &ExprError) -> Span {
    base
}
