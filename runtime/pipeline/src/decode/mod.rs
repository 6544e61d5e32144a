//! Node tree → [`ast`](crate::ast) types, collecting every problem instead
//! of stopping at the first.
//!
//! Each section has its own file; this one holds the shared [`Decoder`]
//! with the checks every section uses (types, unknown fields, ranges).

mod container;
mod deploy;
mod job;
mod pipeline;
mod step;
mod store;
mod strategy;
mod value;

pub(crate) use pipeline::decode;

use crate::diagnostic::Diagnostic;
use crate::source::Span;
use crate::suggest;
use crate::yaml::{Entry, Key, Node, NodeKind};

/// Collects diagnostics while decoding.
#[derive(Default)]
pub(crate) struct Decoder {
    pub diagnostics: Vec<Diagnostic>,
}

impl Decoder {
    fn push(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    /// `expected X for `field`, found Y`.
    fn wrong_type(&mut self, node: &Node, expected: &str, field: &str) {
        self.push(
            Diagnostic::error(
                "wrong-type",
                node.span,
                format!(
                    "expected {expected} for `{field}`, found {}",
                    node.describe()
                ),
            )
            .with_help(type_hint(expected, field)),
        );
    }

    /// The entries of a mapping; null counts as empty (`env:` with nothing
    /// after it), anything else is a type error.
    fn mapping<'n>(&mut self, node: &'n Node, field: &str) -> Option<&'n [Entry]> {
        match &node.kind {
            NodeKind::Mapping(entries) => Some(entries),
            _ if node.is_null() => Some(&[]),
            _ => {
                self.wrong_type(node, "a mapping", field);
                None
            }
        }
    }

    /// Reports a field that `context` does not have, suggesting the closest
    /// valid one or listing them all.
    fn unknown_field(&mut self, key: &Key, context: &str, valid: &[&str]) {
        let help = suggest::help(&key.name, valid.iter().copied(), || {
            Some(format!("valid fields are: {}", valid.join(", ")))
        });
        let mut d = Diagnostic::error(
            "unknown-field",
            key.span,
            format!("unknown field `{}` in {context}", key.name),
        )
        .with_label("unknown field");
        d.help = help;
        self.push(d);
    }

    /// A seed-document feature that parses but is delivered later.
    fn not_yet_supported(&mut self, span: Span, what: &str, delivered_by: &str) {
        self.push(
            Diagnostic::warning(
                "not-yet-supported",
                span,
                format!("{what} is not supported yet and is ignored; {delivered_by}"),
            )
            .with_label("accepted but not yet implemented"),
        );
    }
}

/// Remembers which canonical fields an object set, to reject a field given
/// twice under two spellings (`needs` and `depends_on`).
#[derive(Default)]
struct Spellings(Vec<(&'static str, String, Span)>);

impl Spellings {
    /// Records `key` as a spelling of `canonical`; returns false (after
    /// reporting) if another spelling already set it.
    fn claim(&mut self, decoder: &mut Decoder, canonical: &'static str, key: &Key) -> bool {
        if let Some((_, first, span)) = self.0.iter().find(|(c, _, _)| *c == canonical) {
            decoder.push(
                Diagnostic::error(
                    "conflicting-fields",
                    key.span,
                    format!("`{}` and `{first}` set the same field; keep one", key.name),
                )
                .with_label(format!("`{first}` is already set on line {}", span.line))
                .with_help(format!("remove `{}` or `{first}`", key.name)),
            );
            return false;
        }
        self.0.push((canonical, key.name.clone(), key.span));
        true
    }
}

/// How to write a value of the `expected` kind, for a wrong-type diagnostic.
fn type_hint(expected: &str, field: &str) -> String {
    if expected.starts_with("a list") {
        format!("write `{field}` as a list: one `- item` per line, or `[a, b]`")
    } else if expected.starts_with("a mapping") {
        format!("write `{field}` as `key: value` lines indented under it")
    } else if expected == "a string" {
        "quote the value to make it a string: `\"…\"`".to_owned()
    } else if expected == "a whole number" || expected == "`true` or `false`" {
        format!("write {expected} without quotes")
    } else if expected == "a duration" {
        "write seconds (`90`) or a number with units: `500ms`, `90s`, `5m`, `1h30m`".to_owned()
    } else {
        format!("give `{field}` {expected}")
    }
}
