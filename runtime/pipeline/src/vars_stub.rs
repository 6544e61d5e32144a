//! TEMPORARY stand-in for `vars.rs` (owned by the variables work) so this
//! crate compiles until it lands. Same signature as the agreed contract.
#![allow(dead_code)]

use std::ops::Range;

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarErrorKind {
    /// `${NAME}` with no value and no default.
    Undefined(String),
    /// Names that refer to each other.
    Cycle(Vec<String>),
    /// Malformed reference.
    Syntax(String),
}

/// A problem in one string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarError {
    /// What.
    pub kind: VarErrorKind,
    /// Where in the text.
    pub offset: Range<usize>,
}

/// Minimal `${NAME}` interpolation.
pub fn interpolate(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, VarError> {
    let mut out = String::new();
    let mut rest = text;
    let mut base = 0;
    while let Some(i) = rest.find("${") {
        if rest[i + 2..].starts_with('{') {
            let end = rest[i..].find("}}").map_or(rest.len(), |e| i + e + 2);
            out.push_str(&rest[..end]);
            base += end;
            rest = &rest[end..];
            continue;
        }
        out.push_str(&rest[..i]);
        let Some(close) = rest[i..].find('}') else {
            return Err(VarError {
                kind: VarErrorKind::Syntax("unclosed `${`".into()),
                offset: base + i..base + rest.len(),
            });
        };
        let name = &rest[i + 2..i + close];
        match lookup(name) {
            Some(v) => out.push_str(&v),
            None => {
                return Err(VarError {
                    kind: VarErrorKind::Undefined(name.into()),
                    offset: base + i..base + i + close + 1,
                });
            }
        }
        base += i + close + 1;
        rest = &rest[i + close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
