//! Expression text → tokens with byte ranges.
//!
//! One pass over the bytes; every error names the offending range and, for
//! the mistakes people coming from other languages make (`"text"`, `=`, `&`),
//! says what to write instead.

use std::borrow::Cow;
use std::ops::Range;

use super::ExprError;

/// One token and where it is.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token<'s> {
    pub kind: Tok<'s>,
    pub span: Range<usize>,
}

/// Token kinds. Names and strings borrow from the text (a string is copied
/// only if it has `''` escapes); the parser copies what it keeps.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok<'s> {
    Null,
    Bool(bool),
    Number(f64),
    Str(Cow<'s, str>),
    Ident(&'s str),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Star,
    Not,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl Tok<'_> {
    /// How the token reads in an error message.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Null => "`null`".into(),
            Tok::Bool(b) => format!("`{b}`"),
            Tok::Number(_) => "number".into(),
            Tok::Str(_) => "string".into(),
            Tok::Ident(name) => format!("`{name}`"),
            other => format!("`{}`", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::Comma => ",",
            Tok::Dot => ".",
            Tok::Star => "*",
            Tok::Not => "!",
            Tok::Eq => "==",
            Tok::Ne => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::And => "&&",
            Tok::Or => "||",
            _ => "?",
        }
    }

    /// Whether a value can end here, so a following `.` is a property
    /// access rather than the start of a number like `.5`.
    fn ends_value(&self) -> bool {
        matches!(
            self,
            Tok::Ident(_) | Tok::RParen | Tok::RBracket | Tok::Star | Tok::Str(_)
        )
    }
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

/// GitHub allows `-` inside names (`steps.build-app.outputs`); there is no
/// subtraction operator for it to clash with.
fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn error(message: impl Into<String>, span: Range<usize>, help: Option<String>) -> ExprError {
    ExprError {
        message: message.into(),
        offset: span,
        help,
    }
}

/// Splits `text` into tokens.
pub(super) fn tokenize(text: &str) -> Result<Vec<Token<'_>>, ExprError> {
    let bytes = text.as_bytes();
    let mut tokens: Vec<Token<'_>> = Vec::with_capacity(text.len() / 3 + 1);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        let after_value = tokens.last().is_some_and(|t| t.kind.ends_value());
        let next = bytes.get(i + 1).copied();
        let kind = match b {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'\'' => {
                let (s, end) = lex_string(text, i)?;
                i = end;
                Tok::Str(s)
            }
            b'"' => return Err(double_quoted(text, i)),
            b'0'..=b'9' => {
                let (n, end) = lex_number(text, i)?;
                i = end;
                Tok::Number(n)
            }
            b'-' | b'+' if text[i + 1..].starts_with("Infinity") => {
                i += 1 + "Infinity".len();
                Tok::Number(if b == b'-' {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                })
            }
            b'-' | b'+' if next.is_some_and(|c| c.is_ascii_digit() || c == b'.') => {
                let (n, end) = lex_number(text, i)?;
                i = end;
                Tok::Number(n)
            }
            b'.' if !after_value && next.is_some_and(|c| c.is_ascii_digit()) => {
                let (n, end) = lex_number(text, i)?;
                i = end;
                Tok::Number(n)
            }
            _ if is_ident_start(b) => {
                while i < bytes.len() && is_ident_char(bytes[i]) {
                    i += 1;
                }
                match &text[start..i] {
                    "null" => Tok::Null,
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "NaN" => Tok::Number(f64::NAN),
                    "Infinity" => Tok::Number(f64::INFINITY),
                    word => Tok::Ident(word),
                }
            }
            _ => {
                let (kind, len) = lex_symbol(text, i)?;
                i += len;
                kind
            }
        };
        tokens.push(Token {
            kind,
            span: start..i,
        });
    }
    Ok(tokens)
}

fn lex_symbol(text: &str, i: usize) -> Result<(Tok<'static>, usize), ExprError> {
    let bytes = text.as_bytes();
    let two = |c: u8| bytes.get(i + 1) == Some(&c);
    let token = match bytes[i] {
        b'(' => (Tok::LParen, 1),
        b')' => (Tok::RParen, 1),
        b'[' => (Tok::LBracket, 1),
        b']' => (Tok::RBracket, 1),
        b',' => (Tok::Comma, 1),
        b'.' => (Tok::Dot, 1),
        b'*' => (Tok::Star, 1),
        b'!' if two(b'=') => (Tok::Ne, 2),
        b'!' => (Tok::Not, 1),
        b'=' if two(b'=') => (Tok::Eq, 2),
        b'<' if two(b'=') => (Tok::Le, 2),
        b'<' => (Tok::Lt, 1),
        b'>' if two(b'=') => (Tok::Ge, 2),
        b'>' => (Tok::Gt, 1),
        b'&' if two(b'&') => (Tok::And, 2),
        b'|' if two(b'|') => (Tok::Or, 2),
        b'=' => return Err(error("unexpected `=`", i..i + 1, hint("compare with `==`"))),
        b'&' => return Err(error("unexpected `&`", i..i + 1, hint("use `&&` for and"))),
        b'|' => return Err(error("unexpected `|`", i..i + 1, hint("use `||` for or"))),
        _ => {
            let c = text[i..].chars().next().unwrap_or('?');
            let span = i..i + c.len_utf8();
            let help = match c {
                '+' | '-' | '/' | '%' => hint("expressions have no arithmetic"),
                '{' | '}' => hint("`{` and `}` only appear inside strings: '{0}'"),
                _ => None,
            };
            return Err(error(format!("unexpected character `{c}`"), span, help));
        }
    };
    Ok(token)
}

fn hint(text: &str) -> Option<String> {
    Some(text.to_owned())
}

/// A `'…'` string starting at `start`; `''` is an escaped quote.
fn lex_string(text: &str, start: usize) -> Result<(Cow<'_, str>, usize), ExprError> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut i = start + 1;
    let mut run = i;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                let s = out.get_or_insert_with(String::new);
                s.push_str(&text[run..=i]);
                i += 2;
                run = i;
                continue;
            }
            let value = match out {
                None => Cow::Borrowed(&text[run..i]),
                Some(mut s) => {
                    s.push_str(&text[run..i]);
                    Cow::Owned(s)
                }
            };
            return Ok((value, i + 1));
        }
        i += 1;
    }
    Err(error(
        "unterminated string",
        start..text.len(),
        hint("close the string with `'`"),
    ))
}

fn double_quoted(text: &str, start: usize) -> ExprError {
    let rest = &text[start + 1..];
    let (span, help) = match rest.find('"') {
        Some(len) => (
            start..start + len + 2,
            format!(
                "strings use single quotes: '{}'",
                rest[..len].replace('\'', "''")
            ),
        ),
        None => (start..start + 1, "strings use single quotes: 'text'".into()),
    };
    error("unexpected `\"`", span, Some(help))
}

/// A number: optional sign, then hex `0x1F`, or decimal with optional
/// fraction and exponent. A number running into letters (`12ab`) is one
/// bad token, not a number followed by a name.
fn lex_number(text: &str, start: usize) -> Result<(f64, usize), ExprError> {
    let bytes = text.as_bytes();
    let mut i = start;
    let negative = bytes[i] == b'-';
    if matches!(bytes[i], b'-' | b'+') {
        i += 1;
    }
    let digits = |mut j: usize, pred: fn(&u8) -> bool| {
        while j < bytes.len() && pred(&bytes[j]) {
            j += 1;
        }
        j
    };
    let value = if bytes[i] == b'0' && matches!(bytes.get(i + 1), Some(b'x' | b'X')) {
        let from = i + 2;
        i = digits(from, u8::is_ascii_hexdigit);
        u64::from_str_radix(&text[from..i], 16)
            .ok()
            .map(|n| n as f64)
    } else {
        i = digits(i, u8::is_ascii_digit);
        if bytes.get(i) == Some(&b'.') {
            i = digits(i + 1, u8::is_ascii_digit);
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(bytes.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            let end = digits(j, u8::is_ascii_digit);
            if end > j {
                i = end;
            }
        }
        let body = text[start..i].trim_start_matches('+');
        body.parse::<f64>().ok()
    };
    let mut end = i;
    while end < bytes.len() && (is_ident_char(bytes[end]) || bytes[end] == b'.') {
        end += 1;
    }
    match value {
        Some(v) if end == i => Ok((if negative { -v.abs() } else { v }, i)),
        _ => Err(error(
            format!("invalid number `{}`", &text[start..end]),
            start..end,
            hint("numbers look like `42`, `-1.5`, `2e3` or `0xff`"),
        )),
    }
}
