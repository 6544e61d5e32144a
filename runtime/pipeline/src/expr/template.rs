//! Splitting a string into literal text and `${{ }}` expressions.

use std::ops::Range;

use super::{Expr, ExprError};

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Segment {
    /// Text copied as is (a range of the template text).
    Literal(Range<usize>),
    /// An expression; `at` is the offset of its inner text in the template.
    Expr { expr: Expr, at: usize },
}

/// Splits `text` in one pass. An expression ends at the first `}}` outside
/// a string literal, so `${{ format('{{0}}', x) }}` is one expression.
pub(super) fn split(text: &str) -> Result<Vec<Segment>, ExprError> {
    let mut segments = Vec::new();
    let mut pos = 0;
    while let Some(found) = text[pos..].find("${{") {
        let open = pos + found;
        if open > pos {
            segments.push(Segment::Literal(pos..open));
        }
        let inner_start = open + 3;
        let Some(close) = expression_end(text, inner_start) else {
            return Err(ExprError {
                message: "unterminated `${{`".into(),
                offset: open..open + 3,
                help: Some("close the expression with `}}`".into()),
            });
        };
        let expr = Expr::parse(&text[inner_start..close]).map_err(|e| ExprError {
            offset: e.offset.start + inner_start..e.offset.end + inner_start,
            ..e
        })?;
        segments.push(Segment::Expr {
            expr,
            at: inner_start,
        });
        pos = close + 2;
    }
    if pos < text.len() {
        segments.push(Segment::Literal(pos..text.len()));
    }
    Ok(segments)
}

/// Offset of the `}}` that closes an expression whose text starts at
/// `from`, skipping `'…'` strings (`''` is an escaped quote, which the
/// toggle handles for free).
pub(crate) fn expression_end(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut in_string = false;
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => in_string = !in_string,
            b'}' if !in_string && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}
