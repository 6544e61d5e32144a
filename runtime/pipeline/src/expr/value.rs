//! Run-time values and GitHub's coercion rules.
//!
//! Values borrow from the [`super::Context`] wherever they can, so reading
//! `needs.build.outputs.x` copies one string, not the `needs` object.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

/// A value during evaluation.
#[derive(Debug, Clone)]
pub(super) enum Val<'a> {
    Null,
    Bool(bool),
    /// JSON cannot hold NaN or ±Infinity; expressions can.
    Num(f64),
    Str(Cow<'a, str>),
    /// An array or object.
    Coll(Cow<'a, Value>),
    /// The result of `*`: an array whose later `.name` / `[i]` apply to
    /// each element (`labels.*.name`).
    Filter(Vec<Val<'a>>),
}

impl<'a> Val<'a> {
    /// A context value, borrowed.
    pub(super) fn of(v: &'a Value) -> Self {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => Val::Num(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => Val::Str(Cow::Borrowed(s)),
            Value::Array(_) | Value::Object(_) => Val::Coll(Cow::Borrowed(v)),
        }
    }

    /// An owned JSON value (`fromJSON`'s result, a moved-out element).
    pub(super) fn owned(v: Value) -> Self {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(b),
            Value::Number(n) => Val::Num(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => Val::Str(Cow::Owned(s)),
            v @ (Value::Array(_) | Value::Object(_)) => Val::Coll(Cow::Owned(v)),
        }
    }

    /// GitHub's truthiness: `false 0 -0 '' null NaN` are falsy, everything
    /// else (including empty arrays and objects) is truthy.
    pub(super) fn truthy(&self) -> bool {
        match self {
            Val::Null => false,
            Val::Bool(b) => *b,
            Val::Num(n) => *n != 0.0 && !n.is_nan(),
            Val::Str(s) => !s.is_empty(),
            Val::Coll(_) | Val::Filter(_) => true,
        }
    }

    /// Number coercion: null → 0, bools → 0/1, strings parsed (empty → 0,
    /// unparsable → NaN), arrays and objects → NaN.
    pub(super) fn to_number(&self) -> f64 {
        match self {
            Val::Null => 0.0,
            Val::Bool(b) => f64::from(u8::from(*b)),
            Val::Num(n) => *n,
            Val::Str(s) => parse_number(s),
            Val::Coll(_) | Val::Filter(_) => f64::NAN,
        }
    }

    /// String coercion as used by `format`, `join`, `contains` and template
    /// rendering: collections become JSON (pretty when `pretty`).
    pub(super) fn to_text(&self, pretty: bool) -> Cow<'_, str> {
        match self {
            Val::Null => Cow::Borrowed(""),
            Val::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Val::Num(n) => Cow::Owned(format_number(*n)),
            Val::Str(s) => Cow::Borrowed(s),
            Val::Coll(_) | Val::Filter(_) => {
                let v = self.to_json();
                let s = if pretty {
                    serde_json::to_string_pretty(&v)
                } else {
                    serde_json::to_string(&v)
                };
                Cow::Owned(s.unwrap_or_default())
            }
        }
    }

    /// The value as JSON. NaN becomes `null` and ±Infinity the strings
    /// `"Infinity"`/`"-Infinity"`, which keeps their truthiness.
    pub(super) fn to_json(&self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Bool(b) => Value::Bool(*b),
            Val::Num(n) => number_to_json(*n),
            Val::Str(s) => Value::String(s.to_string()),
            Val::Coll(v) => v.as_ref().clone(),
            Val::Filter(items) => Value::Array(items.iter().map(Val::to_json).collect()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Val::Null => 0,
            Val::Bool(_) => 1,
            Val::Num(_) => 2,
            Val::Str(_) => 3,
            Val::Coll(_) | Val::Filter(_) => 4,
        }
    }
}

fn number_to_json(n: f64) -> Value {
    if n.is_nan() {
        Value::Null
    } else if n.is_infinite() {
        Value::String(format_number(n))
    } else if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        // Exactly representable integers stay integers in JSON (`1`, not `1.0`).
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// JSON-number or hex text to a number, surrounding whitespace ignored;
/// empty → 0; anything else → NaN.
pub(super) fn parse_number(s: &str) -> f64 {
    let t = s.trim();
    if t.is_empty() {
        return 0.0;
    }
    let (neg, body) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let v = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).map_or(f64::NAN, |n| n as f64)
    } else if body == "Infinity" {
        f64::INFINITY
    } else if body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || b".eE+-".contains(&b))
    {
        body.parse().unwrap_or(f64::NAN)
    } else {
        f64::NAN
    };
    if neg { -v } else { v }
}

/// Numbers as JavaScript prints them: `1`, `1.5`, `-0` → `0`, `1e+21`,
/// `NaN`, `Infinity`.
pub(super) fn format_number(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if n == 0.0 {
        return "0".into();
    }
    let abs = n.abs();
    if (1e-6..1e21).contains(&abs) {
        return format!("{n}");
    }
    // Rust's `{:e}` is the shortest round-trip form (`1e21`, `1.5e-7`);
    // JavaScript writes an explicit `+` on positive exponents.
    let s = format!("{n:e}");
    match s.split_once('e') {
        Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
        _ => s,
    }
}

/// `==` as GitHub defines it: same kinds compare directly (strings ignoring
/// case, collections by identity), otherwise both sides become numbers.
pub(super) fn loose_eq(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Num(x), Val::Num(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => eq_ignore_case(x, y),
        (Val::Coll(Cow::Borrowed(x)), Val::Coll(Cow::Borrowed(y))) => std::ptr::eq(*x, *y),
        (Val::Coll(_) | Val::Filter(_), _) | (_, Val::Coll(_) | Val::Filter(_)) => false,
        _ => a.to_number() == b.to_number(),
    }
}

/// `< <= > >=`: `None` when the operands do not order (NaN, collections).
pub(super) fn compare(a: &Val<'_>, b: &Val<'_>) -> Option<Ordering> {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => Some(cmp_ignore_case(x, y)),
        _ if a.rank() == 4 || b.rank() == 4 => None,
        _ => a.to_number().partial_cmp(&b.to_number()),
    }
}

/// Case-insensitive comparison; GitHub folds with the invariant culture,
/// Unicode lowercase is the closest thing we have.
pub(super) fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

fn cmp_ignore_case(a: &str, b: &str) -> Ordering {
    a.chars()
        .flat_map(char::to_lowercase)
        .cmp(b.chars().flat_map(char::to_lowercase))
}

/// Lowercased copy for substring tests.
pub(super) fn fold(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}
