//! Expression tests: exact values, exact messages, exact offsets.

mod eval;
mod fuzz;
mod hash;
mod parse;
mod template;

use serde_json::{Value, json};

use super::*;

/// A context with a little of everything, as the engine would build it.
fn cx() -> Context<'static> {
    let Value::Object(values) = json!({
        "env": { "HOME": "/home/me", "EMPTY": "", "Count": "3" },
        "matrix": { "os": "linux", "shard": 2, "flags": ["a", "b"] },
        "needs": { "build": { "result": "success", "outputs": { "version": "1.2.3" } } },
        "secrets": { "TOKEN": "s3cret" },
        "git": { "branch": "main", "sha": "abc123" },
        "steps": {
            "list": { "outputs": { "items": [
                { "name": "x", "size": 1 }, { "name": "y", "size": 2 }, { "size": 3 }
            ] } }
        },
        "inputs": { "n": 0, "f": 1.5, "nothing": null, "yes": true },
    }) else {
        unreachable!()
    };
    Context {
        values,
        status: Status::Success,
        workspace: None,
    }
}

/// Evaluates `text` in [`cx`], panicking with the error if it fails.
fn ev(text: &str) -> Value {
    ev_in(text, &cx())
}

fn ev_in(text: &str, cx: &Context<'_>) -> Value {
    let e = Expr::parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
    e.eval(cx).unwrap_or_else(|e| panic!("{text}: {e:?}"))
}

/// The formatted value, as a template renders it.
fn show(text: &str) -> String {
    let e = Expr::parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
    e.eval_string(&cx())
        .unwrap_or_else(|e| panic!("{text}: {e:?}"))
}

/// `(message, offset, help)` of a parse error.
fn parse_err(text: &str) -> (String, std::ops::Range<usize>, Option<String>) {
    match Expr::parse(text) {
        Ok(e) => panic!("{text}: expected a parse error, got {e:?}"),
        Err(e) => (e.message, e.offset, e.help),
    }
}
