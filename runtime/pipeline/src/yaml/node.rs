//! The spanned YAML node tree the decoder walks.
//!
//! Aliases and merge keys are already resolved: the tree is plain data.

use crate::source::Span;

/// One YAML value with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// What the value is.
    pub kind: NodeKind,
    /// From its first to one past its last character (for collections, the
    /// start of the collection).
    pub span: Span,
}

/// The shapes a YAML value can take.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    /// A string, number, boolean or null, still as text.
    Scalar(Scalar),
    /// `[a, b]` or `- a` items.
    Sequence(Vec<Node>),
    /// Key/value pairs in source order, keys unique, merges applied.
    Mapping(Vec<Entry>),
}

/// A mapping entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// The key (keys are always scalars here).
    pub key: Key,
    /// The value.
    pub value: Node,
}

/// A mapping key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    /// The key's text.
    pub name: String,
    /// Where it was written.
    pub span: Span,
}

/// A scalar's text and how it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scalar {
    /// The value after unquoting/folding.
    pub value: String,
    /// Plain scalars are typed (`true`, `3`, `~`); quoted and block scalars
    /// are always strings.
    pub style: Style,
    /// Byte offset in the source where `value` appears verbatim, when it
    /// does (plain or quoted single-line text without escapes). Lets a
    /// diagnostic point *inside* the string.
    pub verbatim_at: Option<usize>,
}

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Unquoted.
    Plain,
    /// `'…'`, `"…"` or tagged `!!str`.
    Quoted,
    /// `|` or `>`.
    Block,
}

/// The YAML 1.2 core-schema type of a scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScalarType {
    Null,
    Bool(bool),
    Int(i64),
    Float,
    Str,
}

impl Scalar {
    /// Resolves the core-schema type: only plain scalars are anything but
    /// strings, so `"true"` stays a string.
    pub(crate) fn ty(&self) -> ScalarType {
        if self.style != Style::Plain {
            return ScalarType::Str;
        }
        match self.value.as_str() {
            "" | "~" | "null" | "Null" | "NULL" => return ScalarType::Null,
            "true" | "True" | "TRUE" => return ScalarType::Bool(true),
            "false" | "False" | "FALSE" => return ScalarType::Bool(false),
            _ => {}
        }
        if let Some(n) = parse_int(&self.value) {
            return ScalarType::Int(n);
        }
        let v = self.value.trim_start_matches(['+', '-']);
        let float_word = matches!(v, ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN");
        let looks_numeric = v.starts_with(|c: char| c.is_ascii_digit() || c == '.');
        if float_word || (looks_numeric && self.value.parse::<f64>().is_ok()) {
            return ScalarType::Float;
        }
        ScalarType::Str
    }
}

fn parse_int(text: &str) -> Option<i64> {
    let (neg, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -magnitude } else { magnitude })
}

impl Node {
    /// `a string`, `a list`, … for "expected X, found Y" messages.
    pub(crate) fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Sequence(_) => "a list",
            NodeKind::Mapping(_) => "a mapping",
            NodeKind::Scalar(s) => match s.ty() {
                ScalarType::Null => "nothing (null)",
                ScalarType::Bool(_) => "a boolean",
                ScalarType::Int(_) | ScalarType::Float => "a number",
                ScalarType::Str => "a string",
            },
        }
    }

    /// The scalar, if this is one.
    pub(crate) fn scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            NodeKind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// True for `~`, `null` and an empty value.
    pub(crate) fn is_null(&self) -> bool {
        self.scalar().is_some_and(|s| s.ty() == ScalarType::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(v: &str) -> Scalar {
        Scalar {
            value: v.into(),
            style: Style::Plain,
            verbatim_at: None,
        }
    }

    #[test]
    fn core_schema_types() {
        assert_eq!(plain("true").ty(), ScalarType::Bool(true));
        assert_eq!(plain("~").ty(), ScalarType::Null);
        assert_eq!(plain("30").ty(), ScalarType::Int(30));
        assert_eq!(plain("-0x1f").ty(), ScalarType::Int(-31));
        assert_eq!(plain("1.5").ty(), ScalarType::Float);
        assert_eq!(plain("5m").ty(), ScalarType::Str);
        assert_eq!(plain("1.2.3").ty(), ScalarType::Str);
        let quoted = Scalar {
            style: Style::Quoted,
            ..plain("true")
        };
        assert_eq!(quoted.ty(), ScalarType::Str);
    }
}
