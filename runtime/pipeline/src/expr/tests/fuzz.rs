//! Random input: parsing and evaluation never panic, and every error's
//! offset is inside the text on character boundaries.

use super::*;

const PIECES: &[&str] = &[
    "env",
    "matrix",
    "secrets",
    "steps",
    ".",
    "*",
    "[",
    "]",
    "(",
    ")",
    ",",
    "!",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "&&",
    "||",
    "'",
    "'a'",
    "''",
    "\"",
    "0",
    "1.5",
    "-2",
    "0x1f",
    "1e999",
    "NaN",
    "null",
    "true",
    "format",
    "contains",
    "join",
    "toJSON",
    "fromJSON",
    "hashFiles",
    "success",
    "('{0}'",
    "'{{'",
    "'[1,{\"a\":2}]'",
    "flags",
    "outputs",
    "é",
    "=",
    "&",
    " ",
    "${{",
    "}}",
    "}",
    "{",
];

fn random_text(rng: &mut fastrand::Rng, max: usize) -> String {
    let len = rng.usize(0..max);
    (0..len)
        .map(|_| PIECES[rng.usize(0..PIECES.len())])
        .collect::<Vec<_>>()
        .join(if rng.bool() { " " } else { "" })
}

fn assert_in(text: &str, e: &ExprError) {
    let r = &e.offset;
    assert!(r.start <= r.end && r.end <= text.len(), "{text:?}: {e:?}");
    assert!(
        text.is_char_boundary(r.start) && text.is_char_boundary(r.end),
        "{text:?}: {e:?}"
    );
    assert!(!e.message.is_empty());
}

#[test]
fn expressions_never_panic() {
    let mut rng = fastrand::Rng::with_seed(0x6b69_6c6e);
    let cx = cx();
    for _ in 0..30_000 {
        let text = random_text(&mut rng, 14);
        match Expr::parse(&text) {
            Ok(e) => {
                let _ = e.references();
                match e.eval(&cx) {
                    Ok(_) => {}
                    Err(err) => assert_in(&text, &err),
                }
            }
            Err(err) => assert_in(&text, &err),
        }
    }
}

#[test]
fn templates_never_panic() {
    let mut rng = fastrand::Rng::with_seed(42);
    let cx = cx();
    for _ in 0..20_000 {
        let text = random_text(&mut rng, 12);
        match Template::parse(&text) {
            Ok(t) => {
                let _ = t.references();
                if let Err(err) = t.render(&cx) {
                    assert_in(&text, &err);
                }
            }
            Err(err) => assert_in(&text, &err),
        }
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = fastrand::Rng::with_seed(3);
    for _ in 0..20_000 {
        let len = rng.usize(0..24);
        let text: String = (0..len).map(|_| rng.char(..)).collect();
        if let Err(err) = Expr::parse(&text) {
            assert_in(&text, &err);
        }
        if let Err(err) = Template::parse(&format!("${{{{{text}}}}}")) {
            assert!(err.offset.end <= text.len() + 5);
        }
    }
}
