//! Turning raw strings into [`Template`]s and [`Expr`]s: expression syntax,
//! context references, and `${VAR}` interpolation, each error pointing into
//! the string where it can.

use std::ops::Range;

use crate::ast::Text;
use crate::diagnostic::Diagnostic;
use crate::expr::{Expr, ExprError, Template};
use crate::source::Span;
use crate::suggest;
use crate::vars;
use crate::yaml::LineIndex;

/// Contexts an expression may read (DESIGN.md "The pipeline language").
const CONTEXTS: &[&str] = &[
    "env", "vars", "matrix", "needs", "steps", "git", "secrets", "inputs", "job",
];

/// What the references in one field may point at.
pub(crate) struct Visible<'a> {
    /// The job key, for messages.
    pub job: &'a str,
    /// Job keys in this job's `needs`, as written.
    pub needs: &'a [&'a str],
    /// Every job key in the pipeline (to tell "not needed" from "no such job").
    pub all_jobs: &'a dyn Fn(&str) -> bool,
    /// Matrix keys, or `None` if the job has no matrix.
    pub matrix: Option<&'a [String]>,
    /// Step ids visible from this field.
    pub steps: &'a [String],
}

/// Where `${VAR}` values come from, highest precedence first.
pub(crate) type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// Converts text to templates and expressions, collecting diagnostics.
pub(crate) struct Texts<'a> {
    pub lines: &'a LineIndex<'a>,
    pub diagnostics: Vec<Diagnostic>,
    /// Variable cycles already reported, by their sorted member names: one
    /// cycle is one mistake, however many fields run into it.
    pub reported_cycles: std::collections::HashSet<Vec<String>>,
}

impl Texts<'_> {
    /// The span of `range` inside `text`, or the whole scalar when the
    /// text does not map 1:1 onto the source (escapes, block scalars).
    fn inner(&self, text: &Text, range: Range<usize>) -> Span {
        match text.verbatim_at {
            Some(at) if range.end <= text.value.len() => {
                self.lines.byte_span(at + range.start, at + range.end)
            }
            _ => text.span,
        }
    }

    fn bad_expression(&mut self, text: &Text, shift: usize, err: &ExprError) {
        let span = self.inner(text, err.offset.start + shift..err.offset.end + shift);
        let mut d = Diagnostic::error(
            "bad-expression",
            span,
            format!("invalid expression: {}", err.message),
        );
        d.help = Some(
            err.help
                .clone()
                .unwrap_or_else(|| crate::expr::SYNTAX_HELP.to_owned()),
        );
        self.diagnostics.push(d);
    }

    /// Parses a `${{ }}` template, checks its references, and (when
    /// `lookup` is given) interpolates `${VAR}` first.
    pub(crate) fn template(
        &mut self,
        text: &Text,
        visible: &Visible<'_>,
        lookup: Option<&Lookup<'_>>,
    ) -> Option<Template> {
        let parsed = match Template::parse(&text.value) {
            Ok(t) => t,
            Err(e) => {
                self.bad_expression(text, 0, &e);
                return None;
            }
        };
        self.check_references(text, &parsed.references(), visible);
        let Some(lookup) = lookup.filter(|_| text.value.contains("${")) else {
            return Some(parsed);
        };
        let interpolated = match vars::interpolate(&text.value, lookup) {
            Ok(s) => s,
            Err(e) => {
                self.variable_error(text, &e);
                return None;
            }
        };
        if interpolated == text.value {
            return Some(parsed);
        }
        match Template::parse(&interpolated) {
            Ok(t) => Some(t),
            Err(e) => {
                self.diagnostics.push(
                    Diagnostic::error(
                        "bad-expression",
                        text.span,
                        format!(
                            "invalid expression after substituting variables: {}",
                            e.message
                        ),
                    )
                    .with_help(
                        "a variable's value became part of a `${{ }}` expression; \
                     quote it in the expression, or pass it through `env` instead",
                    ),
                );
                None
            }
        }
    }

    /// Parses an `if:` condition, written with or without `${{ }}`.
    pub(crate) fn condition(&mut self, text: &Text, visible: &Visible<'_>) -> Option<Expr> {
        let trimmed = text.value.trim();
        let lead = text.value.len() - text.value.trim_start().len();
        let (inner, shift) = match trimmed
            .strip_prefix("${{")
            .and_then(|t| t.strip_suffix("}}"))
        {
            Some(inner) if !inner.contains("}}") => (inner, lead + 3),
            _ => (trimmed, lead),
        };
        match Expr::parse(inner) {
            Ok(expr) => {
                // The references walker lives on templates; wrapping the
                // already-valid expression cannot fail differently.
                if let Ok(t) = Template::parse(&format!("${{{{ {inner} }}}}")) {
                    self.check_references(text, &t.references(), visible);
                }
                Some(expr)
            }
            Err(e) => {
                self.bad_expression(text, shift, &e);
                None
            }
        }
    }

    fn variable_error(&mut self, text: &Text, err: &vars::VarError) {
        let span = self.inner(text, err.offset.clone());
        let d = match &err.kind {
            vars::VarErrorKind::Undefined(name) => Diagnostic::error(
                "undefined-variable",
                span,
                format!("undefined variable `{name}`"),
            )
            .with_help(format!("pass `--var {name}=…` or set `{name}` in `env:`")),
            vars::VarErrorKind::Cycle(path) if !self.first_report_of(path) => return,
            vars::VarErrorKind::Cycle(path) => Diagnostic::error(
                "variable-cycle",
                span,
                format!(
                    "variables refer to each other in a cycle: {}",
                    path.join(" → ")
                ),
            )
            .with_help("break the cycle by giving one of them a literal value"),
            vars::VarErrorKind::Syntax(message) => Diagnostic::error(
                "bad-variable",
                span,
                format!("invalid variable reference: {message}"),
            )
            .with_help(
                "write `${NAME}`, `${NAME:-default}`, `${NAME:+alt}` or `${NAME/pattern/replacement}`; \
                 `$$` is a literal `$`",
            ),
        };
        self.diagnostics.push(d);
    }

    fn first_report_of(&mut self, cycle: &[String]) -> bool {
        let mut members = cycle.to_vec();
        members.sort();
        members.dedup();
        self.reported_cycles.insert(members)
    }

    fn check_references(
        &mut self,
        text: &Text,
        references: &[(String, String)],
        visible: &Visible<'_>,
    ) {
        for (context, name) in references {
            if let Some(d) = self.check_reference(text, context, name, visible) {
                self.diagnostics.push(d);
            }
        }
    }

    fn check_reference(
        &self,
        text: &Text,
        context: &str,
        name: &str,
        v: &Visible<'_>,
    ) -> Option<Diagnostic> {
        let at = |needle: &str| {
            text.value
                .find(needle)
                .map_or(text.span, |i| self.inner(text, i..i + needle.len()))
        };
        if !CONTEXTS.contains(&context) {
            let mut d = Diagnostic::error(
                "unknown-context",
                at(context),
                format!("unknown context `{context}`"),
            );
            d.help = suggest::help(context, CONTEXTS.iter().copied(), || {
                Some(format!("expressions can read: {}", CONTEXTS.join(", ")))
            });
            return Some(d);
        }
        if name.is_empty() {
            return None;
        }
        let full = format!("{context}.{name}");
        match context {
            "needs" if !v.needs.contains(&name) => {
                let mut d = Diagnostic::error(
                    "unknown-need",
                    at(&full),
                    format!("`{full}` refers to a job that `{}` does not need", v.job),
                );
                d.help = suggest::help(name, v.needs.iter().copied(), || {
                    (v.all_jobs)(name)
                        .then(|| format!("add `{name}` to the `needs` of `{}`", v.job))
                });
                Some(d)
            }
            "matrix" => match v.matrix {
                None => Some(
                    Diagnostic::error(
                        "unknown-matrix-key",
                        at(&full),
                        format!("`{full}` is used but job `{}` has no matrix", v.job),
                    )
                    .with_help(format!(
                        "give `{}` a `strategy: {{ matrix: {{ {name}: [...] }} }}`, or remove the reference",
                        v.job
                    )),
                ),
                Some(keys) if !keys.iter().any(|k| k == name) => {
                    let mut d = Diagnostic::error(
                        "unknown-matrix-key",
                        at(&full),
                        format!("the matrix of job `{}` has no key `{name}`", v.job),
                    );
                    d.help = suggest::help(name, keys.iter().map(String::as_str), || {
                        Some(format!(
                            "the matrix keys are: {}",
                            suggest::listing(keys.iter().map(String::as_str))
                        ))
                    });
                    Some(d)
                }
                Some(_) => None,
            },
            "steps" if !v.steps.iter().any(|s| s == name) => {
                let mut d = Diagnostic::error(
                    "unknown-step",
                    at(&full),
                    format!(
                        "`{full}` refers to no earlier step with `id: {name}` in job `{}`",
                        v.job
                    ),
                );
                d.help = suggest::help(name, v.steps.iter().map(String::as_str), || {
                    Some(format!(
                        "give the step that writes the output `id: {name}`; \
                         a step reads only the outputs of earlier steps of its job"
                    ))
                });
                Some(d)
            }
            _ => None,
        }
    }
}
