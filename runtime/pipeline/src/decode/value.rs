//! Scalar and small-collection decoders shared by every section.

use std::time::Duration;

use super::Decoder;
use crate::ast::{Pair, Text};
use crate::diagnostic::Diagnostic;
use crate::duration;
use crate::yaml::{Node, NodeKind, ScalarType};

/// Longest accepted timeout: three days covers any CI job; more is a typo.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(72 * 3600);
/// Longest accepted retry delay.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(3600);

impl Decoder {
    /// Any non-null scalar as text (`port: 8080` is the string `8080`).
    pub(super) fn text(&mut self, node: &Node, field: &str) -> Option<Text> {
        match node.scalar() {
            Some(s) if s.ty() != ScalarType::Null => Some(Text {
                value: s.value.clone(),
                span: node.span,
                verbatim_at: s.verbatim_at,
            }),
            _ => {
                self.wrong_type(node, "a string", field);
                None
            }
        }
    }

    /// A list of strings; a single string is a list of one (`needs: build`).
    pub(super) fn string_list(&mut self, node: &Node, expected: &str, field: &str) -> Vec<Text> {
        match &node.kind {
            NodeKind::Sequence(items) => items
                .iter()
                .filter_map(|item| match item.scalar() {
                    Some(_) if !item.is_null() => self.text(item, field),
                    _ => {
                        self.wrong_type(item, "a string", field);
                        None
                    }
                })
                .collect(),
            NodeKind::Scalar(_) if node.is_null() => Vec::new(),
            NodeKind::Scalar(_) => self.text(node, field).into_iter().collect(),
            NodeKind::Mapping(_) => {
                self.wrong_type(node, expected, field);
                Vec::new()
            }
        }
    }

    /// `true` or `false` (plain; `"true"` is a string).
    pub(super) fn boolean(&mut self, node: &Node, field: &str) -> Option<bool> {
        match node.scalar().map(|s| s.ty()) {
            Some(ScalarType::Bool(b)) => Some(b),
            _ => {
                self.wrong_type(node, "`true` or `false`", field);
                None
            }
        }
    }

    /// An integer in `min..=max`.
    pub(super) fn integer(&mut self, node: &Node, field: &str, min: i64, max: i64) -> Option<u32> {
        let Some(ScalarType::Int(n)) = node.scalar().map(|s| s.ty()) else {
            self.wrong_type(node, "a whole number", field);
            return None;
        };
        if n < min || n > max {
            self.push(
                Diagnostic::error(
                    "out-of-range",
                    node.span,
                    format!("`{field}` must be between {min} and {max}, found {n}"),
                )
                .with_help(format!("use a number from {min} to {max}")),
            );
            return None;
        }
        u32::try_from(n).ok()
    }

    /// A duration: a number of seconds or a string like `1h30m`.
    pub(super) fn duration(&mut self, node: &Node, field: &str) -> Option<Duration> {
        let scalar = node.scalar().filter(|_| !node.is_null());
        let parsed = match scalar.map(|s| (s, s.ty())) {
            Some((_, ScalarType::Int(n))) if n < 0 => {
                self.push(
                    Diagnostic::error(
                        "out-of-range",
                        node.span,
                        format!("`{field}` cannot be negative, found {n}"),
                    )
                    .with_help("write a positive number of seconds or a duration like `90s`"),
                );
                return None;
            }
            Some((_, ScalarType::Int(n))) => u64::try_from(n).ok().map(Duration::from_secs),
            Some((s, ScalarType::Float)) => s
                .value
                .parse::<f64>()
                .ok()
                .and_then(|f| Duration::try_from_secs_f64(f).ok()),
            Some((s, ScalarType::Str)) => duration::parse(&s.value),
            _ => {
                self.wrong_type(node, "a duration", field);
                return None;
            }
        };
        if parsed.is_none() {
            let written = scalar.map_or("", |s| s.value.as_str());
            self.push(
                Diagnostic::error(
                    "invalid-duration",
                    node.span,
                    format!("invalid duration `{written}` for `{field}`"),
                )
                .with_help(
                    "write seconds (`90`) or a number with units: `500ms`, `90s`, `5m`, `1h30m`",
                ),
            );
        }
        parsed
    }

    /// A timeout: a duration greater than zero and at most 72h.
    pub(super) fn timeout(&mut self, node: &Node, field: &str) -> Option<Duration> {
        let d = self.duration(node, field)?;
        if d.is_zero() || d > MAX_TIMEOUT {
            self.push(
                Diagnostic::error(
                    "out-of-range",
                    node.span,
                    format!(
                        "`{field}` must be greater than 0 and at most 72h, found {}",
                        duration::format(d)
                    ),
                )
                .with_help("use a duration from `1s` to `72h`; leave the field out for no timeout"),
            );
            return None;
        }
        Some(d)
    }

    /// A retry delay: at most 1h.
    pub(super) fn backoff(&mut self, node: &Node, field: &str) -> Option<Duration> {
        let d = self.duration(node, field)?;
        if d > MAX_BACKOFF {
            self.push(
                Diagnostic::error(
                    "out-of-range",
                    node.span,
                    format!(
                        "`{field}` must be at most 1h, found {}",
                        duration::format(d)
                    ),
                )
                .with_help("use a delay of at most `1h`; it doubles on each further attempt"),
            );
            return None;
        }
        Some(d)
    }

    /// A `NAME: value` mapping with scalar values (`env:`, `with:`, `outputs:`).
    pub(super) fn pairs(&mut self, node: &Node, field: &str) -> Vec<Pair> {
        let Some(entries) = self.mapping(node, field) else {
            return Vec::new();
        };
        entries
            .iter()
            .filter_map(|e| {
                let value = if e.value.is_null() {
                    // `KEY:` with nothing means the empty string, as in a shell.
                    Some(Text {
                        value: String::new(),
                        span: e.value.span,
                        verbatim_at: None,
                    })
                } else {
                    self.text(&e.value, &format!("{field}.{}", e.key.name))
                }?;
                Some(Pair {
                    name: e.key.name.clone(),
                    name_span: e.key.span,
                    value,
                })
            })
            .collect()
    }
}

/// Converts a YAML value to JSON (matrix values), typing plain scalars.
pub(crate) fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value;
    match &node.kind {
        NodeKind::Scalar(s) => match s.ty() {
            ScalarType::Null => Value::Null,
            ScalarType::Bool(b) => Value::Bool(b),
            ScalarType::Int(n) => Value::from(n),
            ScalarType::Float => s
                .value
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| Value::String(s.value.clone()), Value::Number),
            ScalarType::Str => Value::String(s.value.clone()),
        },
        NodeKind::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        NodeKind::Mapping(entries) => Value::Object(
            entries
                .iter()
                .map(|e| (e.key.name.clone(), to_json(&e.value)))
                .collect(),
        ),
    }
}
