//! The built-in functions. Arity was checked by the parser, so argument
//! indexing here cannot miss.

use std::borrow::Cow;

use super::ast::{Func, Node};
use super::eval::eval;
use super::value::{Val, fold, loose_eq};
use super::{Context, ExprError, MAX_RESULT, Status, format_string, hash_files};

pub(super) fn call<'a>(
    func: Func,
    args: &'a [Node],
    call: &'a Node,
    cx: &'a Context<'_>,
) -> Result<Val<'a>, ExprError> {
    let arg = |i: usize| eval(&args[i], cx);
    let fail = |message: String| ExprError {
        message,
        offset: call.span.clone(),
        help: None,
    };
    Ok(match func {
        Func::Success => Val::Bool(cx.status == Status::Success),
        Func::Failure => Val::Bool(cx.status == Status::Failure),
        Func::Cancelled => Val::Bool(cx.status == Status::Cancelled),
        Func::Always => Val::Bool(true),
        Func::Contains => Val::Bool(contains(&arg(0)?, &arg(1)?)),
        Func::StartsWith | Func::EndsWith => {
            let (hay, needle) = (arg(0)?, arg(1)?);
            let hay = hay.to_text(false);
            let needle = needle.to_text(false);
            let (hay, needle) = (fold(&hay), fold(&needle));
            Val::Bool(if func == Func::StartsWith {
                hay.starts_with(needle.as_ref())
            } else {
                hay.ends_with(needle.as_ref())
            })
        }
        Func::Format => {
            let fmt = arg(0)?;
            let mut rest = Vec::with_capacity(args.len() - 1);
            for i in 1..args.len() {
                rest.push(arg(i)?.to_text(false).into_owned());
            }
            let out = format_string::render(&fmt.to_text(false), &rest).map_err(fail)?;
            bounded(out, call)?
        }
        Func::Join => {
            let sep = match args.len() {
                2 => arg(1)?.to_text(false).into_owned(),
                _ => ",".to_owned(),
            };
            let out = match arg(0)? {
                Val::Filter(items) => join(&items, &sep),
                Val::Coll(v) => match v.as_ref() {
                    serde_json::Value::Array(items) => {
                        join(&items.iter().map(Val::of).collect::<Vec<_>>(), &sep)
                    }
                    _ => Val::Coll(v).to_text(false).into_owned(),
                },
                other => other.to_text(false).into_owned(),
            };
            bounded(out, call)?
        }
        Func::ToJson => {
            let text = serde_json::to_string_pretty(&arg(0)?.to_json())
                .map_err(|e| fail(e.to_string()))?;
            Val::Str(Cow::Owned(text))
        }
        Func::FromJson => {
            let text = arg(0)?;
            let text = text.to_text(false);
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| fail(format!("`fromJSON` got invalid JSON: {e}")))?;
            Val::owned(value)
        }
        Func::HashFiles => {
            let mut patterns = Vec::with_capacity(args.len());
            for i in 0..args.len() {
                patterns.push(arg(i)?.to_text(false).into_owned());
            }
            let digest = match cx.workspace {
                Some(root) => hash_files::hash_files(root, &patterns).map_err(fail)?,
                None => String::new(),
            };
            Val::Str(Cow::Owned(digest))
        }
    })
}

/// `contains(array, item)` looks for an equal element; otherwise both sides
/// are strings and the test is a case-insensitive substring search.
fn contains(search: &Val<'_>, item: &Val<'_>) -> bool {
    match search {
        Val::Filter(items) => items.iter().any(|v| loose_eq(v, item)),
        Val::Coll(v) => match v.as_ref() {
            serde_json::Value::Array(items) => items.iter().any(|v| loose_eq(&Val::of(v), item)),
            _ => false,
        },
        _ => {
            let hay = search.to_text(false);
            let needle = item.to_text(false);
            fold(&hay).contains(fold(&needle).as_ref())
        }
    }
}

fn join(items: &[Val<'_>], sep: &str) -> String {
    let mut out = String::new();
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(&v.to_text(false));
        // Stop early; `bounded` reports the overflow.
        if out.len() > MAX_RESULT {
            break;
        }
    }
    out
}

/// Refuses strings beyond [`MAX_RESULT`]: nested `format` calls could
/// otherwise double a string 64 times.
fn bounded<'a>(s: String, call: &Node) -> Result<Val<'a>, ExprError> {
    if s.len() > MAX_RESULT {
        return Err(ExprError {
            message: format!("result is longer than {MAX_RESULT} bytes"),
            offset: call.span.clone(),
            help: None,
        });
    }
    Ok(Val::Str(Cow::Owned(s)))
}
