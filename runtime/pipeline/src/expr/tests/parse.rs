//! Syntax: what parses, and the exact error for what does not.

use super::*;

#[test]
fn literals() {
    assert_eq!(ev("null"), Value::Null);
    assert_eq!(ev("true"), json!(true));
    assert_eq!(ev("false"), json!(false));
    assert_eq!(ev("42"), json!(42));
    assert_eq!(ev("-1.5"), json!(-1.5));
    assert_eq!(ev("+7"), json!(7));
    assert_eq!(ev(".5"), json!(0.5));
    assert_eq!(ev("0xff"), json!(255));
    assert_eq!(ev("-0x10"), json!(-16));
    assert_eq!(ev("2e3"), json!(2000));
    assert_eq!(ev("1.5E-1"), json!(0.15));
    assert_eq!(ev("'it''s'"), json!("it's"));
    assert_eq!(ev("''"), json!(""));
    assert_eq!(ev("'a}}b'"), json!("a}}b"));
    assert_eq!(show("NaN"), "NaN");
    assert_eq!(show("Infinity"), "Infinity");
    assert_eq!(show("-Infinity"), "-Infinity");
}

#[test]
fn precedence_not_then_relational_then_equality_then_and_then_or() {
    // `!` binds tighter than `==`: (!true) == false.
    assert_eq!(ev("!true == false"), json!(true));
    // relational before equality: (1 < 2) == true.
    assert_eq!(ev("1 < 2 == true"), json!(true));
    // && before ||.
    assert_eq!(ev("true || false && false"), json!(true));
    assert_eq!(ev("(true || false) && false"), json!(false));
    assert_eq!(ev("'a' == 'a' && 2"), json!(2));
}

#[test]
fn whitespace_is_free() {
    assert_eq!(ev(" \t\n matrix . os\n"), json!("linux"));
    assert_eq!(ev("contains( 'abc' , 'b' )"), json!(true));
}

#[test]
fn function_names_ignore_case() {
    assert_eq!(ev("TOJSON(1)"), json!("1"));
    assert_eq!(ev("startswith('Hello', 'he')"), json!(true));
    assert_eq!(ev("Always()"), json!(true));
}

#[test]
fn keyword_property_names() {
    assert_eq!(ev("inputs.yes"), json!(true));
    assert_eq!(ev("fromJSON('{\"true\": 1}').true"), json!(1));
}

#[test]
fn errors_name_the_exact_place() {
    let cases: &[(&str, &str, std::ops::Range<usize>)] = &[
        ("", "empty expression", 0..0),
        ("   ", "empty expression", 0..3),
        ("1 +", "unexpected character `+`", 2..3),
        (
            "a ==",
            "unexpected end of expression: expected a value",
            4..4,
        ),
        (
            "a b",
            "unexpected `b`: expected an operator or the end of the expression",
            2..3,
        ),
        ("(a", "unexpected end of expression: expected `)`", 2..2),
        (
            "a)",
            "unexpected `)`: expected an operator or the end of the expression",
            1..2,
        ),
        (
            "a[0",
            "unexpected end of expression: expected `]` to close the index",
            3..3,
        ),
        (
            "a.",
            "unexpected end of expression: expected a property name after `.`",
            2..2,
        ),
        (
            "a.1",
            "unexpected number: expected a property name after `.`",
            2..3,
        ),
        (
            "a.(b)",
            "unexpected `(`: expected a property name after `.`",
            2..3,
        ),
        ("'abc", "unterminated string", 0..4),
        ("12ab", "invalid number `12ab`", 0..4),
        ("1.2.3", "invalid number `1.2.3`", 0..5),
        ("0x", "invalid number `0x`", 0..2),
        ("a = b", "unexpected `=`", 2..3),
        ("a & b", "unexpected `&`", 2..3),
        ("a | b", "unexpected `|`", 2..3),
        ("a { b", "unexpected character `{`", 2..3),
        ("é", "unexpected character `é`", 0..2),
        (
            "contains('a')",
            "`contains` takes 2 arguments, got 1",
            0..13,
        ),
        ("toJSON()", "`toJSON` takes 1 argument, got 0", 0..8),
        (
            "join(1, 2, 3)",
            "`join` takes 1 or 2 arguments, got 3",
            0..13,
        ),
        (
            "format()",
            "`format` takes at least 1 argument, got 0",
            0..8,
        ),
        ("success(1)", "`success` takes 0 arguments, got 1", 0..10),
        (
            "contains('a' 'b')",
            "unexpected string: expected `,` or `)` after an argument",
            13..16,
        ),
        ("foo(1)", "unknown function `foo`", 0..3),
    ];
    for (text, message, offset) in cases {
        let (m, o, _) = parse_err(text);
        assert_eq!((m.as_str(), o), (*message, offset.clone()), "{text:?}");
    }
}

#[test]
fn helps_for_habits_from_other_languages() {
    assert_eq!(
        parse_err("env.A == \"x\""),
        (
            "unexpected `\"`".into(),
            9..12,
            Some("strings use single quotes: 'x'".into())
        )
    );
    assert_eq!(
        parse_err("\"it's").2.as_deref(),
        Some("strings use single quotes: 'text'")
    );
    assert_eq!(
        parse_err("\"it's\"").2.as_deref(),
        Some("strings use single quotes: 'it''s'")
    );
    assert_eq!(parse_err("a = b").2.as_deref(), Some("compare with `==`"));
    assert_eq!(parse_err("a & b").2.as_deref(), Some("use `&&` for and"));
    assert_eq!(
        parse_err("1 - 2").2.as_deref(),
        Some("expressions have no arithmetic")
    );
    assert_eq!(
        parse_err("stratsWith('a', 'b')").2.as_deref(),
        Some("did you mean `startsWith`?")
    );
    assert_eq!(
        parse_err("bogus()").2.as_deref(),
        Some(
            "available functions: contains, startsWith, endsWith, format, join, toJSON, \
             fromJSON, hashFiles, success, failure, always, cancelled"
        )
    );
}

#[test]
fn literal_format_strings_are_checked_at_parse_time() {
    let cases: &[(&str, &str)] = &[
        (
            "format('{0} {1}', 'a')",
            "format string uses `{1}` but only 1 argument follows",
        ),
        (
            "format('{0}')",
            "format string uses `{0}` but only 0 arguments follow",
        ),
        (
            "format('{x}', 1)",
            "invalid placeholder `{x}` in format string",
        ),
        (
            "format('{-1}', 1)",
            "invalid placeholder `{-1}` in format string",
        ),
        ("format('{0', 1)", "unclosed `{` in format string"),
        ("format('0}', 1)", "unmatched `}` in format string"),
    ];
    for (text, message) in cases {
        let (m, o, h) = parse_err(text);
        assert_eq!(
            (m.as_str(), o),
            (*message, 7..text.find(',').unwrap_or(text.len() - 1)),
            "{text}"
        );
        assert!(h.is_some_and(|h| h.contains("`{{`")));
    }
}

#[test]
fn nesting_is_capped_not_a_stack_overflow() {
    let deep = format!("{}true{}", "(".repeat(65), ")".repeat(65));
    assert_eq!(
        parse_err(&deep).0,
        "expression nests more than 64 levels deep"
    );
    let nots = format!("{}true", "!".repeat(100));
    assert_eq!(
        parse_err(&nots).0,
        "expression nests more than 64 levels deep"
    );
    let chain = format!("env{}", ".a".repeat(100));
    let (message, offset, _) = parse_err(&chain);
    assert_eq!(
        (message.as_str(), offset),
        ("expression nests more than 64 levels deep", 0..3 + 64 * 2)
    );
    let calls = format!("{}1{}", "toJSON(".repeat(70), ")".repeat(70));
    assert_eq!(
        parse_err(&calls).0,
        "expression nests more than 64 levels deep"
    );
    // Just under the cap is fine.
    let ok = format!("{}true{}", "(".repeat(60), ")".repeat(60));
    assert_eq!(ev(&ok), json!(true));
}

#[test]
fn long_flat_chains_do_not_count_as_nesting() {
    let ors = vec!["false"; 500].join(" || ") + " || 'last'";
    assert_eq!(ev(&ors), json!("last"));
    let ands = vec!["1"; 500].join(" && ");
    assert_eq!(ev(&ands), json!(1));
}

#[test]
fn length_is_capped() {
    let long = format!("'{}'", "x".repeat(MAX_LEN));
    let (message, offset, _) = parse_err(&long);
    assert_eq!(
        message,
        format!(
            "expression is {} bytes long; the limit is 16384",
            MAX_LEN + 2
        )
    );
    assert_eq!(offset, 0..MAX_LEN + 2);
}

#[test]
fn status_function_detection() {
    let uses = |t: &str| Expr::parse(t).map(|e| e.uses_status_function());
    assert_eq!(uses("always()"), Ok(true));
    assert_eq!(uses("failure() || env.X"), Ok(true));
    assert_eq!(uses("!cancelled()"), Ok(true));
    assert_eq!(uses("env.X == 'y'"), Ok(false));
}

#[test]
fn check_reports_unknown_contexts() {
    let known = ["env", "matrix", "secrets"];
    let e = Expr::parse("env.A && github.sha").unwrap();
    assert_eq!(
        e.check(&known),
        Err(ExprError {
            message: "unknown context `github`".into(),
            offset: 9..15,
            help: Some("expressions can read: env, matrix, secrets".into()),
        })
    );
    let e = Expr::parse("matrx.os").unwrap();
    assert_eq!(
        e.check(&known).unwrap_err().help.as_deref(),
        Some("did you mean `matrix`?")
    );
    assert_eq!(Expr::parse("toJSON(env)").unwrap().check(&known), Ok(()));
}
