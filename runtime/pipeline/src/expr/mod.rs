//! `${{ }}` expressions: a small, total interpreter with GitHub Actions
//! semantics.
//!
//! - [`Expr::parse`] parses the text between `${{` and `}}`.
//! - [`Template::parse`] splits a string into literal text and expressions.
//! - [`Expr::eval`] / [`Template::render`] evaluate against a [`Context`].
//! - [`Template::references`] lists `context.name` pairs used (so the engine
//!   injects only referenced secrets, and validation checks `needs.<job>`).
//!
//! Bounded by construction: expressions longer than [`MAX_LEN`] bytes or
//! nested deeper than [`MAX_DEPTH`] are parse errors, and string results
//! beyond [`MAX_RESULT`] bytes are evaluation errors, so no input can
//! overflow the stack or exhaust memory. The only I/O is `hashFiles`.

mod ast;
mod eval;
mod format_string;
mod functions;
mod hash_files;
mod lexer;
mod parser;
mod template;
mod value;

#[cfg(test)]
mod tests;

use std::ops::Range;
use std::path::Path;

use serde_json::Value;

use self::ast::{Func, Kind, Node};
use self::template::Segment;
use self::value::Val;

pub(crate) use self::parser::SYNTAX_HELP;
pub(crate) use self::template::expression_end;

/// The files under `root` selected by glob `patterns` (`*`, `?`, `**`,
/// leading `!` to exclude; a directory selects every file below it), as
/// sorted `/`-separated relative paths: exactly the files `hashFiles` would
/// hash. Used for `artifacts:` globs, so both features read the same rules.
pub fn match_files(root: &Path, patterns: &[String]) -> Result<Vec<String>, String> {
    hash_files::match_files(root, patterns)
}

/// Longest expression text accepted, in bytes.
pub const MAX_LEN: usize = 16 * 1024;
/// Deepest nesting accepted (parentheses, `!`, property chains, calls).
pub const MAX_DEPTH: usize = 64;
/// Longest string an expression may produce, in bytes.
pub const MAX_RESULT: usize = 1024 * 1024;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// Original text, for display.
    pub text: String,
    ast: Node,
}

/// A string with `${{ }}` expressions in it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Template {
    /// Original text.
    pub text: String,
    segments: Vec<Segment>,
}

/// A problem in an expression, with a span relative to the parsed text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    /// What is wrong.
    pub message: String,
    /// Byte range inside the parsed text: the expression's for [`Expr`]
    /// methods, the whole template's for [`Template`] methods.
    pub offset: Range<usize>,
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

/// A context property an expression reads, with where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The top-level name (`secrets`), as written.
    pub context: String,
    /// The first property (`TOKEN` in `secrets.TOKEN` or `secrets['TOKEN']`),
    /// or `""` when the context is used whole or with a computed index.
    pub name: String,
    /// Byte range of the reference (`secrets.TOKEN`) in the parsed text.
    pub offset: Range<usize>,
}

impl Expr {
    /// Parses expression text (without `${{ }}`).
    pub fn parse(text: &str) -> Result<Self, ExprError> {
        Ok(Self {
            text: text.to_owned(),
            ast: parser::parse(text)?,
        })
    }

    /// Evaluates; never panics, errors only for run-time problems such as
    /// `fromJSON` of invalid JSON or `hashFiles` failing to read a file.
    ///
    /// JSON has no NaN or Infinity: a NaN result is `null` and ±Infinity the
    /// strings `"Infinity"`/`"-Infinity"` (same truthiness). Use
    /// [`Expr::eval_bool`] for conditions.
    pub fn eval(&self, cx: &Context<'_>) -> Result<Value, ExprError> {
        Ok(eval::eval(&self.ast, cx)?.to_json())
    }

    /// Evaluates and applies GitHub's truthiness (`false 0 -0 '' null NaN`
    /// are false): what `if:` needs.
    pub fn eval_bool(&self, cx: &Context<'_>) -> Result<bool, ExprError> {
        Ok(eval::eval(&self.ast, cx)?.truthy())
    }

    /// Evaluates and formats the value as a template would.
    pub fn eval_string(&self, cx: &Context<'_>) -> Result<String, ExprError> {
        Ok(eval::eval(&self.ast, cx)?.to_text(true).into_owned())
    }

    /// Whether the expression calls `success()`, `failure()`, `always()` or
    /// `cancelled()`. GitHub wraps an `if:` without one in
    /// `success() && (…)`; the engine does the same.
    pub fn uses_status_function(&self) -> bool {
        let mut found = false;
        self.ast.walk(&mut |n| {
            found |= matches!(
                n.kind,
                Kind::Call(
                    Func::Success | Func::Failure | Func::Always | Func::Cancelled,
                    _
                )
            );
        });
        found
    }

    /// Context references with their offsets in [`Expr::text`], in order
    /// of appearance, duplicates kept.
    pub fn references(&self) -> Vec<Reference> {
        let mut out = Vec::new();
        collect_references(&self.ast, 0, &mut out);
        out
    }

    /// Fails on the first context name not in `known` (exact spelling), at
    /// its offset in [`Expr::text`].
    pub fn check(&self, known: &[&str]) -> Result<(), ExprError> {
        check_references(&self.references(), known)
    }
}

impl Template {
    /// Splits `text` into literals and `${{ }}` expressions.
    ///
    /// Error offsets are relative to `text`. An unterminated `${{` is an
    /// error at the `${{`.
    pub fn parse(text: &str) -> Result<Self, ExprError> {
        Ok(Self {
            text: text.to_owned(),
            segments: template::split(text)?,
        })
    }

    /// Whether there is nothing to evaluate.
    pub fn is_literal(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// The text, if there is nothing to evaluate: the engine's fast path.
    pub fn as_literal(&self) -> Option<&str> {
        self.is_literal().then_some(self.text.as_str())
    }

    /// Renders: each expression's value as GitHub formats it (strings as-is,
    /// numbers canonical, null as '', objects as JSON).
    pub fn render(&self, cx: &Context<'_>) -> Result<String, ExprError> {
        let mut out = String::with_capacity(self.text.len());
        for segment in &self.segments {
            match segment {
                Segment::Literal(range) => out.push_str(&self.text[range.clone()]),
                Segment::Expr { expr, at } => {
                    let value = eval::eval(&expr.ast, cx).map_err(|e| shift(e, *at))?;
                    out.push_str(&value.to_text(true));
                }
            }
        }
        Ok(out)
    }

    /// `(context, first property)` pairs referenced, e.g. `("secrets", "TOKEN")`,
    /// `("needs", "build")`; `""` as the property when a context is used
    /// whole. Unknown context names are included (see [`Template::check`]).
    /// Each pair appears once, in order of first appearance.
    pub fn references(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for r in self.located_references() {
            if !out.iter().any(|(c, n)| *c == r.context && *n == r.name) {
                out.push((r.context, r.name));
            }
        }
        out
    }

    /// Every context reference with its offset in [`Template::text`], in
    /// order, duplicates kept.
    pub fn located_references(&self) -> Vec<Reference> {
        let mut out = Vec::new();
        for segment in &self.segments {
            if let Segment::Expr { expr, at } = segment {
                collect_references(&expr.ast, *at, &mut out);
            }
        }
        out
    }

    /// Fails on the first context name not in `known`, at its offset in
    /// [`Template::text`].
    pub fn check(&self, known: &[&str]) -> Result<(), ExprError> {
        check_references(&self.located_references(), known)
    }

    /// The expressions in order, each with the offset of its text inside
    /// [`Template::text`].
    pub fn expressions(&self) -> impl Iterator<Item = (&Expr, usize)> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Expr { expr, at } => Some((expr, *at)),
            Segment::Literal(_) => None,
        })
    }
}

/// GitHub's truthiness for a JSON value (`false 0 '' null` are false).
pub fn truthy(value: &Value) -> bool {
    Val::of(value).truthy()
}

/// Formats a JSON value as a template renders it (`1`, `1.5`, `true`,
/// `''` for null, pretty JSON for collections).
pub fn to_display_string(value: &Value) -> String {
    Val::of(value).to_text(true).into_owned()
}

fn shift(e: ExprError, by: usize) -> ExprError {
    ExprError {
        offset: e.offset.start + by..e.offset.end + by,
        ..e
    }
}

/// Recursion is bounded by [`MAX_DEPTH`], which the parser enforces.
fn collect_references(node: &Node, at: usize, out: &mut Vec<Reference>) {
    let mut push = |context: &str, name: &str| {
        out.push(Reference {
            context: context.to_owned(),
            name: name.to_owned(),
            offset: node.span.start + at..node.span.end + at,
        });
    };
    match &node.kind {
        Kind::Context(c) => push(c, ""),
        Kind::Property(base, name) => match &base.kind {
            Kind::Context(c) => push(c, name),
            _ => collect_references(base, at, out),
        },
        Kind::Star(base) => match &base.kind {
            Kind::Context(c) => push(c, ""),
            _ => collect_references(base, at, out),
        },
        Kind::Index(base, index) => {
            match (&base.kind, &index.kind) {
                (Kind::Context(c), Kind::Str(key)) => push(c, key),
                (Kind::Context(c), _) => push(c, ""),
                _ => collect_references(base, at, out),
            }
            collect_references(index, at, out);
        }
        Kind::Not(a) => collect_references(a, at, out),
        Kind::Compare(_, a, b) => {
            collect_references(a, at, out);
            collect_references(b, at, out);
        }
        Kind::And(items) | Kind::Or(items) | Kind::Call(_, items) => {
            for item in items {
                collect_references(item, at, out);
            }
        }
        Kind::Null | Kind::Bool(_) | Kind::Number(_) | Kind::Str(_) => {}
    }
}

fn check_references(references: &[Reference], known: &[&str]) -> Result<(), ExprError> {
    match references
        .iter()
        .find(|r| !known.contains(&r.context.as_str()))
    {
        None => Ok(()),
        Some(r) => Err(ExprError {
            message: format!("unknown context `{}`", r.context),
            offset: r.offset.start..r.offset.start + r.context.len(),
            help: crate::suggest::help(&r.context, known.iter().copied(), || {
                Some(format!("expressions can read: {}", known.join(", ")))
            }),
        }),
    }
}
