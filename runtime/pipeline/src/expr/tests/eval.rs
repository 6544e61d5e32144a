//! Evaluation: GitHub's rules for contexts, operators and functions.

use super::*;

#[test]
fn contexts_and_properties() {
    assert_eq!(ev("matrix.os"), json!("linux"));
    assert_eq!(ev("needs.build.outputs.version"), json!("1.2.3"));
    assert_eq!(ev("secrets['TOKEN']"), json!("s3cret"));
    assert_eq!(ev("matrix['fl' == 'fl' && 'flags'][1]"), json!("b"));
    assert_eq!(ev("matrix.flags[0]"), json!("a"));
    assert_eq!(ev("env.home"), json!("/home/me"), "keys ignore case");
    assert_eq!(
        ev("ENV.HOME"),
        json!("/home/me"),
        "context names ignore case"
    );
}

#[test]
fn missing_things_are_null_not_errors() {
    assert_eq!(ev("env.NOPE"), Value::Null);
    assert_eq!(ev("needs.deploy.outputs.x"), Value::Null);
    assert_eq!(ev("matrix.os.length"), Value::Null);
    assert_eq!(ev("matrix.flags[2]"), Value::Null);
    assert_eq!(ev("matrix.flags[-1]"), Value::Null);
    assert_eq!(ev("matrix.flags[0.5]"), Value::Null);
    assert_eq!(ev("matrix.flags[true]"), Value::Null);
    assert_eq!(ev("matrix.flags[1e300]"), Value::Null);
    assert_eq!(ev("vars.X"), Value::Null, "a context the run did not fill");
    assert_eq!(ev("null.x"), Value::Null);
}

#[test]
fn object_filters() {
    assert_eq!(ev("steps.list.outputs.items.*.name"), json!(["x", "y"]));
    assert_eq!(ev("steps.list.outputs.items[*].size"), json!([1, 2, 3]));
    assert_eq!(ev("toJSON(needs.*.result)"), json!("[\n  \"success\"\n]"));
    assert_eq!(
        ev("contains(steps.list.outputs.items.*.name, 'Y')"),
        json!(true)
    );
    assert_eq!(ev("join(matrix.flags.*, '+')"), json!("a+b"));
    assert_eq!(ev("fromJSON('[[1,2],[3]]').*.*"), json!([1, 2, 3]));
    assert_eq!(ev("fromJSON('[{\"a\":[{\"b\":1}]}]').*.a.*.b"), json!([1]));
    assert_eq!(ev("matrix.os.*"), json!([]));
}

#[test]
fn truthiness() {
    let cases = [
        ("false", false),
        ("0", false),
        ("-0", false),
        ("''", false),
        ("null", false),
        ("NaN", false),
        ("true", true),
        ("1", true),
        ("-1", true),
        ("'0'", true),
        ("'false'", true),
        ("fromJSON('[]')", true),
        ("fromJSON('{}')", true),
        ("Infinity", true),
    ];
    for (text, expected) in cases {
        let e = Expr::parse(text).unwrap();
        assert_eq!(e.eval_bool(&cx()), Ok(expected), "{text}");
        assert_eq!(ev(&format!("!{text}")), json!(!expected), "!{text}");
    }
}

#[test]
fn and_or_return_operands() {
    assert_eq!(ev("'' || 'fallback'"), json!("fallback"));
    assert_eq!(ev("env.NOPE || 'default'"), json!("default"));
    assert_eq!(ev("0 || null"), Value::Null);
    assert_eq!(ev("'a' && 'b'"), json!("b"));
    assert_eq!(ev("0 && 'b'"), json!(0));
    assert_eq!(
        ev("matrix.os == 'linux' && 'ubuntu' || 'other'"),
        json!("ubuntu")
    );
}

#[test]
fn and_or_short_circuit() {
    // The right side would fail (invalid JSON) if it ran.
    assert_eq!(ev("false && fromJSON('{')"), json!(false));
    assert_eq!(ev("true || fromJSON('{')"), json!(true));
}

#[test]
fn equality_coerces_like_github() {
    let cases = [
        ("1 == 1", true),
        ("1 == 1.0", true),
        ("'abc' == 'ABC'", true),
        ("'1' == 1", true),
        ("' 1 ' == 1", true),
        ("'0x10' == 16", true),
        ("'' == 0", true),
        ("'' == null", true),
        ("null == 0", true),
        ("null == false", true),
        ("true == 1", true),
        ("true == '1'", true),
        ("false == ''", true),
        ("'true' == true", false),
        ("'abc' == 0", false),
        ("NaN == NaN", false),
        ("NaN != NaN", true),
        ("matrix == matrix", true),
        ("matrix.flags == matrix.flags", true),
        ("fromJSON('[]') == fromJSON('[]')", false),
        ("matrix == 'x'", false),
        ("matrix.flags != 0", true),
        ("needs.build.result == 'SUCCESS'", true),
        ("env.Count == 3", true),
    ];
    for (text, expected) in cases {
        assert_eq!(ev(text), json!(expected), "{text}");
    }
}

#[test]
fn ordering_coerces_like_github() {
    let cases = [
        ("1 < 2", true),
        ("2 <= 2", true),
        ("3 > 2.5", true),
        ("'a' < 'B'", true),
        ("'B' > 'c'", false),
        ("'abc' >= 'ABC'", true),
        ("'10' > 9", true),
        ("'10' > '9'", false),
        ("null < 1", true),
        ("true > false", true),
        ("NaN < 1", false),
        ("NaN >= 1", false),
        ("'x' < 1", false),
        ("'x' >= 1", false),
        ("matrix < 1", false),
        ("matrix >= matrix", false),
        ("-Infinity < -1e308", true),
    ];
    for (text, expected) in cases {
        assert_eq!(ev(text), json!(expected), "{text}");
    }
}

#[test]
fn number_formatting() {
    let cases = [
        ("1", "1"),
        ("1.5", "1.5"),
        ("-0", "0"),
        ("0.1", "0.1"),
        ("1e21", "1e+21"),
        ("1e20", "100000000000000000000"),
        ("1.5e-7", "1.5e-7"),
        ("0.000001", "0.000001"),
        ("0xFFFFFFFF", "4294967295"),
        ("format('{0}', 2.50)", "2.5"),
        ("inputs.f", "1.5"),
        ("inputs.n", "0"),
    ];
    for (text, expected) in cases {
        assert_eq!(show(text), expected, "{text}");
    }
}

#[test]
fn json_results_for_unrepresentable_numbers() {
    assert_eq!(ev("NaN"), Value::Null);
    assert_eq!(ev("Infinity"), json!("Infinity"));
    assert_eq!(ev("-Infinity"), json!("-Infinity"));
    assert_eq!(ev("9007199254740993"), json!(9_007_199_254_740_992.0));
}

#[test]
fn string_functions_ignore_case() {
    assert_eq!(ev("contains('Hello World', 'WORLD')"), json!(true));
    assert_eq!(ev("contains('Hello', 'x')"), json!(false));
    assert_eq!(ev("contains('ÄBC', 'äb')"), json!(true));
    assert_eq!(ev("contains(matrix.flags, 'B')"), json!(true));
    assert_eq!(ev("contains(matrix.flags, 'c')"), json!(false));
    assert_eq!(ev("contains(fromJSON('[1, 2]'), '2')"), json!(true));
    assert_eq!(
        ev("contains(matrix, 'os')"),
        json!(false),
        "objects hold no elements"
    );
    assert_eq!(ev("contains(12345, 34)"), json!(true), "numbers as strings");
    assert_eq!(ev("contains(null, '')"), json!(true));
    assert_eq!(ev("startsWith(git.branch, 'MA')"), json!(true));
    assert_eq!(ev("endsWith(git.branch, 'IN')"), json!(true));
    assert_eq!(ev("endsWith('abc', 'x')"), json!(false));
    assert_eq!(ev("startsWith(true, 'tr')"), json!(true));
}

#[test]
fn format() {
    assert_eq!(ev("format('{0}-{1}-{0}', 'a', 2)"), json!("a-2-a"));
    assert_eq!(ev("format('{{0}} is {0}', 'x')"), json!("{0} is x"));
    assert_eq!(ev("format('{{ {0} }}', null)"), json!("{  }"));
    assert_eq!(ev("format('plain')"), json!("plain"));
    assert_eq!(ev("format('{0}', matrix.flags)"), json!("[\"a\",\"b\"]"));
    assert_eq!(ev("format('{0}', true)"), json!("true"));
}

#[test]
fn format_with_a_computed_string_fails_at_run_time() {
    let e = Expr::parse("format(env.HOME, 1)").unwrap();
    assert_eq!(e.eval(&cx()), Ok(json!("/home/me")));
    let e = Expr::parse("x || format(matrix.os || '{1}', 1)").unwrap();
    assert_eq!(e.eval(&cx()), Ok(json!("linux")));
    let e = Expr::parse("format(env.NOPE || '{1}', 1)").unwrap();
    assert_eq!(
        e.eval(&cx()),
        Err(ExprError {
            message: "format string uses `{1}` but only 1 argument follows".into(),
            offset: 0..28,
            help: None,
        })
    );
}

#[test]
fn join() {
    assert_eq!(ev("join(matrix.flags)"), json!("a,b"));
    assert_eq!(ev("join(matrix.flags, ' | ')"), json!("a | b"));
    assert_eq!(ev("join(fromJSON('[1, null, true]'), '')"), json!("1true"));
    assert_eq!(ev("join('single', '-')"), json!("single"));
    assert_eq!(ev("join(fromJSON('[]'))"), json!(""));
}

#[test]
fn to_and_from_json() {
    assert_eq!(ev("toJSON(matrix.flags)"), json!("[\n  \"a\",\n  \"b\"\n]"));
    assert_eq!(ev("toJSON('x')"), json!("\"x\""));
    assert_eq!(ev("toJSON(null)"), json!("null"));
    assert_eq!(ev("toJSON(1.5)"), json!("1.5"));
    assert_eq!(ev("fromJSON('{\"a\": [1, 2]}').a[1]"), json!(2));
    assert_eq!(ev("fromJSON('true')"), json!(true));
    assert_eq!(
        ev("fromJSON(toJSON(needs)).build.outputs.version"),
        json!("1.2.3")
    );
    let e = Expr::parse("fromJSON('{nope')").unwrap();
    assert_eq!(
        e.eval(&cx()),
        Err(ExprError {
            message: "`fromJSON` got invalid JSON: key must be a string at line 1 column 2".into(),
            offset: 0..17,
            help: None,
        })
    );
}

#[test]
fn status_functions() {
    let with = |status| Context { status, ..cx() };
    let table = [
        (Status::Success, [true, false, false, true]),
        (Status::Failure, [false, true, false, true]),
        (Status::Cancelled, [false, false, true, true]),
    ];
    for (status, expected) in table {
        let got: Vec<Value> = ["success()", "failure()", "cancelled()", "always()"]
            .iter()
            .map(|t| ev_in(t, &with(status)))
            .collect();
        assert_eq!(got, expected.map(Value::Bool).to_vec(), "{status:?}");
    }
}

#[test]
fn results_are_size_capped() {
    let mut text = "'xxxxxxxxxxxxxxxx'".to_owned();
    for _ in 0..20 {
        text = format!("format('{{0}}{{0}}', {text})");
    }
    let e = Expr::parse(&text).unwrap();
    let err = e.eval(&cx()).unwrap_err();
    assert_eq!(err.message, "result is longer than 1048576 bytes");
}

#[test]
fn public_helpers() {
    assert!(!truthy(&json!(0)));
    assert!(truthy(&json!("0")));
    assert_eq!(to_display_string(&json!(null)), "");
    assert_eq!(to_display_string(&json!(2.0)), "2");
    assert_eq!(to_display_string(&json!({"a": 1})), "{\n  \"a\": 1\n}");
}
