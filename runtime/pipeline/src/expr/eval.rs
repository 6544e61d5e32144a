//! Evaluating a [`Node`] tree against a [`Context`].
//!
//! Total: every operator is defined for every value (a missing property is
//! `null`, a comparison of unrelated kinds is `false`), so the only errors
//! are the few that GitHub also reports at run time (`fromJSON` of bad JSON,
//! a result too large to keep, `hashFiles` unable to read).

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use super::ast::{Cmp, Kind, Node};
use super::value::{Val, compare, loose_eq};
use super::{Context, ExprError, functions};

/// Evaluates `node`; the result may borrow from `node` and `cx`.
pub(super) fn eval<'a>(node: &'a Node, cx: &'a Context<'_>) -> Result<Val<'a>, ExprError> {
    Ok(match &node.kind {
        Kind::Null => Val::Null,
        Kind::Bool(b) => Val::Bool(*b),
        Kind::Number(n) => Val::Num(*n),
        Kind::Str(s) => Val::Str(Cow::Borrowed(s)),
        Kind::Context(name) => lookup_map(&cx.values, name).map_or(Val::Null, Val::of),
        Kind::Property(base, name) => property(eval(base, cx)?, name),
        Kind::Index(base, index) => {
            let base = eval(base, cx)?;
            let index = eval(index, cx)?;
            match index {
                Val::Num(n) => element(base, n),
                Val::Str(key) => property(base, &key),
                _ => Val::Null,
            }
        }
        Kind::Star(base) => star(eval(base, cx)?),
        Kind::Not(operand) => Val::Bool(!eval(operand, cx)?.truthy()),
        Kind::Compare(op, a, b) => {
            let (a, b) = (eval(a, cx)?, eval(b, cx)?);
            Val::Bool(match op {
                Cmp::Eq => loose_eq(&a, &b),
                Cmp::Ne => !loose_eq(&a, &b),
                Cmp::Lt => compare(&a, &b) == Some(Ordering::Less),
                Cmp::Le => matches!(compare(&a, &b), Some(Ordering::Less | Ordering::Equal)),
                Cmp::Gt => compare(&a, &b) == Some(Ordering::Greater),
                Cmp::Ge => matches!(compare(&a, &b), Some(Ordering::Greater | Ordering::Equal)),
            })
        }
        // `&&` and `||` return an operand, not a boolean, and short-circuit
        // (so `a && hashFiles(…)` reads no files when `a` is falsy).
        Kind::And(items) => {
            let mut last = Val::Bool(true);
            for item in items {
                last = eval(item, cx)?;
                if !last.truthy() {
                    break;
                }
            }
            last
        }
        Kind::Or(items) => {
            let mut last = Val::Bool(false);
            for item in items {
                last = eval(item, cx)?;
                if last.truthy() {
                    break;
                }
            }
            last
        }
        Kind::Call(func, args) => functions::call(*func, args, node, cx)?,
    })
}

/// Object keys match exactly first, then ignoring case (GitHub contexts are
/// case-insensitive: `env.HOME` and `env.home` are the same).
fn lookup_map<'v>(map: &'v serde_json::Map<String, Value>, name: &str) -> Option<&'v Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn property<'a>(base: Val<'a>, name: &str) -> Val<'a> {
    match base {
        Val::Coll(Cow::Borrowed(Value::Object(map))) => {
            lookup_map(map, name).map_or(Val::Null, Val::of)
        }
        Val::Coll(Cow::Owned(Value::Object(mut map))) => {
            let key = map
                .keys()
                .find(|k| *k == name)
                .or_else(|| map.keys().find(|k| k.eq_ignore_ascii_case(name)))
                .cloned();
            key.and_then(|k| map.remove(&k))
                .map_or(Val::Null, Val::owned)
        }
        // A filter maps the access over its elements, dropping misses.
        Val::Filter(items) => Val::Filter(
            items
                .into_iter()
                .map(|v| property(v, name))
                .filter(|v| !matches!(v, Val::Null))
                .collect(),
        ),
        _ => Val::Null,
    }
}

fn element<'a>(base: Val<'a>, n: f64) -> Val<'a> {
    if n.fract() != 0.0 || n < 0.0 || n.is_nan() {
        return Val::Null;
    }
    // Saturating cast: indexes past any real array simply miss.
    let i = n as usize;
    match base {
        Val::Coll(Cow::Borrowed(Value::Array(items))) => items.get(i).map_or(Val::Null, Val::of),
        Val::Coll(Cow::Owned(Value::Array(mut items))) if i < items.len() => {
            Val::owned(items.swap_remove(i))
        }
        Val::Filter(items) => Val::Filter(
            items
                .into_iter()
                .map(|v| element(v, n))
                .filter(|v| !matches!(v, Val::Null))
                .collect(),
        ),
        _ => Val::Null,
    }
}

fn star(base: Val<'_>) -> Val<'_> {
    match base {
        Val::Coll(Cow::Borrowed(Value::Array(items))) => {
            Val::Filter(items.iter().map(Val::of).collect())
        }
        Val::Coll(Cow::Borrowed(Value::Object(map))) => {
            Val::Filter(map.values().map(Val::of).collect())
        }
        Val::Coll(Cow::Owned(Value::Array(items))) => {
            Val::Filter(items.into_iter().map(Val::owned).collect())
        }
        Val::Coll(Cow::Owned(Value::Object(map))) => {
            Val::Filter(map.into_iter().map(|(_, v)| Val::owned(v)).collect())
        }
        // `a.*.*` flattens one level per star.
        Val::Filter(items) => Val::Filter(
            items
                .into_iter()
                .flat_map(|v| match star(v) {
                    Val::Filter(inner) => inner,
                    _ => Vec::new(),
                })
                .collect(),
        ),
        _ => Val::Filter(Vec::new()),
    }
}
