//! `${VAR}` variables, the seed documents' syntax for non-script fields.
//!
//! Supported forms: `${VAR}`, `${VAR:-default}` (default when unset or
//! empty), `${VAR:+alt}` (alt when set and non-empty, else empty),
//! `${VAR/pat/rep}` (first occurrence) and `${VAR//pat/rep}` (all), `$$`
//! for a literal `$`. A lone `$`, `$NAME` without braces and `${{ … }}`
//! expressions are left exactly as written: they belong to the shell and to
//! the expression engine.
//!
//! A variable's value may itself contain references, resolved in turn with
//! cycle detection (`A → B → A`); defaults, alternatives and replacement
//! parts may contain references too and are only resolved when used.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use crate::expr::expression_end;

/// Deepest chain of variables referring to variables (and of nested
/// `${…}` inside one string).
pub const MAX_DEPTH: usize = 32;
/// Longest string interpolation may produce, in bytes: `A=${B}${B}`,
/// `B=${C}${C}`, … would otherwise double per level.
pub const MAX_LEN: usize = 1024 * 1024;

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarErrorKind {
    /// `${NAME}` with no value and no default.
    Undefined(String),
    /// Names that refer to each other, first name repeated at the end:
    /// `["A", "B", "A"]`.
    Cycle(Vec<String>),
    /// A malformed reference, or a limit exceeded; the message says which.
    Syntax(String),
}

/// A problem in one string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct VarError {
    /// What.
    pub kind: VarErrorKind,
    /// Byte range in the interpolated text: the reference that failed, or,
    /// when the problem is inside another variable's value, the reference
    /// that led there.
    pub offset: Range<usize>,
}

impl fmt::Display for VarErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarErrorKind::Undefined(name) => write!(f, "undefined variable `{name}`"),
            VarErrorKind::Cycle(path) => {
                let path: Vec<String> = path.iter().map(|n| format!("`{n}`")).collect();
                write!(
                    f,
                    "variables refer to each other in a cycle: {}",
                    path.join(" → ")
                )
            }
            VarErrorKind::Syntax(message) => f.write_str(message),
        }
    }
}

/// Replaces the variable references in `text`, resolving names through
/// `lookup` (which returns raw values; references inside them are resolved
/// here).
pub fn interpolate(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, VarError> {
    resolve(text, lookup, Vec::new())
}

/// Like [`interpolate`], for `text` that is the value of the variable
/// `name`: a reference that leads back to `name` is a cycle reported from
/// `name`'s point of view (`A: ${B}`, `B: ${A}` gives `A → B → A` when
/// interpolating `A`). Do not use it where `${name}` inside its own value
/// means an outer definition (`PATH: ${PATH}:/opt/bin`).
pub fn interpolate_value_of(
    name: &str,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, VarError> {
    resolve(text, lookup, vec![name.to_owned()])
}

fn resolve(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    stack: Vec<String>,
) -> Result<String, VarError> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let pieces = parse(text, 0, text.len(), 0)?.0;
    let mut r = Resolver {
        lookup,
        stack,
        memo: HashMap::new(),
    };
    let mut out = String::with_capacity(text.len());
    r.render(text, &pieces, &mut out, None)?;
    Ok(out)
}

/// A parsed piece of text, with ranges into the string it came from.
#[derive(Debug)]
enum Piece {
    Literal(Range<usize>),
    /// `$$`.
    Dollar,
    Var {
        name: Range<usize>,
        op: Op,
        /// The whole `${…}`.
        span: Range<usize>,
    },
}

#[derive(Debug)]
enum Op {
    Plain,
    Default(Vec<Piece>),
    Alt(Vec<Piece>),
    Replace {
        pattern: Vec<Piece>,
        with: Vec<Piece>,
        all: bool,
    },
}

fn syntax(message: impl Into<String>, offset: Range<usize>) -> VarError {
    VarError {
        kind: VarErrorKind::Syntax(message.into()),
        offset,
    }
}

/// Parses `text[from..]` until `end` or, when nested (`depth > 0`), until
/// an unmatched `}` or (in a pattern) `/`. Returns the pieces and where
/// parsing stopped.
fn parse(
    text: &str,
    from: usize,
    end: usize,
    depth: usize,
) -> Result<(Vec<Piece>, usize), VarError> {
    parse_until(text, from, end, depth, b"")
}

fn parse_until(
    text: &str,
    from: usize,
    end: usize,
    depth: usize,
    stops: &[u8],
) -> Result<(Vec<Piece>, usize), VarError> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let mut run = from;
    let mut i = from;
    while i < end {
        let b = bytes[i];
        if depth > 0 && stops.contains(&b) {
            break;
        }
        if b != b'$' {
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'$') => {
                push_literal(&mut pieces, run..i);
                pieces.push(Piece::Dollar);
                i += 2;
                run = i;
            }
            Some(b'{') if bytes.get(i + 2) == Some(&b'{') => {
                // An expression: copied through untouched, up to its `}}`.
                i = expression_end(&text[..end], i + 3).map_or(end, |c| c + 2);
            }
            Some(b'{') => {
                push_literal(&mut pieces, run..i);
                let (piece, next) = parse_reference(text, i, end, depth)?;
                pieces.push(piece);
                i = next;
                run = i;
            }
            _ => i += 1,
        }
    }
    push_literal(&mut pieces, run..i);
    Ok((pieces, i))
}

fn push_literal(pieces: &mut Vec<Piece>, range: Range<usize>) {
    if !range.is_empty() {
        pieces.push(Piece::Literal(range));
    }
}

/// Parses the `${…}` starting at `start`; returns it and the offset after
/// its `}`.
fn parse_reference(
    text: &str,
    start: usize,
    end: usize,
    depth: usize,
) -> Result<(Piece, usize), VarError> {
    if depth >= MAX_DEPTH {
        return Err(syntax(
            format!("references nest more than {MAX_DEPTH} levels deep"),
            start..end,
        ));
    }
    let bytes = text.as_bytes();
    let name_start = start + 2;
    let mut i = name_start;
    while i < end && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
        i += 1;
    }
    let name = name_start..i;
    let unclosed = || syntax("unclosed `${`: expected `}`", start..end);
    if name.is_empty() {
        return Err(match bytes.get(i) {
            Some(b'}') if i < end => syntax("empty variable name in `${}`", start..i + 1),
            None => unclosed(),
            _ if i >= end => unclosed(),
            _ => syntax(
                format!(
                    "expected a variable name after `${{`, found `{}`",
                    char_at(text, i)
                ),
                start..i + char_len(text, i),
            ),
        });
    }
    if bytes[name_start].is_ascii_digit() {
        return Err(syntax(
            format!(
                "variable name `{}` starts with a digit",
                &text[name.clone()]
            ),
            start..i,
        ));
    }
    let rest = &bytes[i..end];
    let (op, close) = match rest {
        [b'}', ..] => (Op::Plain, i),
        [b':', b'-', ..] | [b':', b'+', ..] => {
            let (word, at) = parse_until(text, i + 2, end, depth + 1, b"}")?;
            let op = if rest[1] == b'-' {
                Op::Default(word)
            } else {
                Op::Alt(word)
            };
            (op, at)
        }
        [b'/', ..] => {
            let all = rest.get(1) == Some(&b'/');
            let pat_start = i + 1 + usize::from(all);
            let (pattern, at) = parse_until(text, pat_start, end, depth + 1, b"/}")?;
            let (with, at) = if bytes.get(at) == Some(&b'/') && at < end {
                parse_until(text, at + 1, end, depth + 1, b"}")?
            } else {
                (Vec::new(), at)
            };
            (Op::Replace { pattern, with, all }, at)
        }
        [] => return Err(unclosed()),
        _ => {
            return Err(syntax(
                format!(
                    "unexpected `{}` after `${{{}`: expected `}}`, `:-`, `:+` or `/`",
                    char_at(text, i),
                    &text[name.clone()]
                ),
                start..i + char_len(text, i),
            ));
        }
    };
    if close >= end || bytes[close] != b'}' {
        return Err(unclosed());
    }
    let span = start..close + 1;
    Ok((Piece::Var { name, op, span }, close + 1))
}

fn char_at(text: &str, i: usize) -> char {
    text[i..].chars().next().unwrap_or(' ')
}

fn char_len(text: &str, i: usize) -> usize {
    char_at(text, i).len_utf8()
}

/// Resolution state for one [`interpolate`] call.
struct Resolver<'l> {
    lookup: &'l dyn Fn(&str) -> Option<String>,
    /// Names being resolved, outermost first: the cycle path.
    stack: Vec<String>,
    /// Resolved values (`None` = undefined), so a name used many times is
    /// expanded once and diamond-shaped references stay linear.
    memo: HashMap<String, Option<String>>,
}

impl Resolver<'_> {
    /// Appends `pieces` (from `text`) to `out`. `via` is the reference in
    /// the caller's text that led here; errors inside a variable's value
    /// point at it, because the value has no place in the caller's text.
    fn render(
        &mut self,
        text: &str,
        pieces: &[Piece],
        out: &mut String,
        via: Option<&Range<usize>>,
    ) -> Result<(), VarError> {
        for piece in pieces {
            match piece {
                Piece::Literal(range) => out.push_str(&text[range.clone()]),
                Piece::Dollar => out.push('$'),
                Piece::Var { name, op, span } => {
                    let at = via.unwrap_or(span);
                    let name = &text[name.clone()];
                    self.reference(text, name, op, at, out, via)?;
                }
            }
            if out.len() > MAX_LEN {
                let at = via.cloned().unwrap_or(0..text.len());
                return Err(syntax(
                    format!("interpolated text is longer than {MAX_LEN} bytes"),
                    at,
                ));
            }
        }
        Ok(())
    }

    fn reference(
        &mut self,
        text: &str,
        name: &str,
        op: &Op,
        at: &Range<usize>,
        out: &mut String,
        via: Option<&Range<usize>>,
    ) -> Result<(), VarError> {
        let value = self.value(name, at)?;
        let set = value.as_deref().is_some_and(|v| !v.is_empty());
        match op {
            Op::Plain => match value {
                Some(v) => out.push_str(&v),
                None => return Err(undefined(name, at)),
            },
            Op::Default(_) if set => out.push_str(value.as_deref().unwrap_or_default()),
            Op::Default(word) => self.render(text, word, out, via)?,
            Op::Alt(word) if set => self.render(text, word, out, via)?,
            Op::Alt(_) => {}
            Op::Replace { pattern, with, all } => {
                let Some(v) = value else {
                    return Err(undefined(name, at));
                };
                let mut pat = String::new();
                self.render(text, pattern, &mut pat, via)?;
                let mut rep = String::new();
                self.render(text, with, &mut rep, via)?;
                match (pat.is_empty(), *all) {
                    (true, _) => out.push_str(&v),
                    (false, true) => out.push_str(&v.replace(&pat, &rep)),
                    (false, false) => out.push_str(&v.replacen(&pat, &rep, 1)),
                }
            }
        }
        Ok(())
    }

    /// The fully resolved value of `name`, `None` if undefined.
    fn value(&mut self, name: &str, at: &Range<usize>) -> Result<Option<String>, VarError> {
        if let Some(v) = self.memo.get(name) {
            return Ok(v.clone());
        }
        if let Some(pos) = self.stack.iter().position(|n| n == name) {
            let mut path = self.stack[pos..].to_vec();
            path.push(name.to_owned());
            return Err(VarError {
                kind: VarErrorKind::Cycle(path),
                offset: at.clone(),
            });
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(syntax(
                format!("variables refer to variables more than {MAX_DEPTH} levels deep"),
                at.clone(),
            ));
        }
        let Some(raw) = (self.lookup)(name) else {
            self.memo.insert(name.to_owned(), None);
            return Ok(None);
        };
        let resolved = if raw.contains('$') {
            let pieces = parse(&raw, 0, raw.len(), 0)
                .map_err(|e| in_value(e, name, at))?
                .0;
            self.stack.push(name.to_owned());
            let mut out = String::with_capacity(raw.len());
            let result = self.render(&raw, &pieces, &mut out, Some(at));
            self.stack.pop();
            result?;
            out
        } else {
            raw
        };
        self.memo.insert(name.to_owned(), Some(resolved.clone()));
        Ok(Some(resolved))
    }
}

fn undefined(name: &str, at: &Range<usize>) -> VarError {
    VarError {
        kind: VarErrorKind::Undefined(name.to_owned()),
        offset: at.clone(),
    }
}

/// A syntax error inside the value of `name`, re-pointed at the reference.
fn in_value(e: VarError, name: &str, at: &Range<usize>) -> VarError {
    let kind = match e.kind {
        VarErrorKind::Syntax(m) => VarErrorKind::Syntax(format!("in the value of `{name}`: {m}")),
        other => other,
    };
    VarError {
        kind,
        offset: at.clone(),
    }
}

#[cfg(test)]
mod tests;
