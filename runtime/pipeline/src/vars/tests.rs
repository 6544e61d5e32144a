//! `${VAR}` interpolation: every form, every error, exact offsets.

use std::ops::Range;

use super::*;

fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

fn ok(text: &str, pairs: &[(&str, &str)]) -> String {
    interpolate(text, &vars(pairs)).unwrap_or_else(|e| panic!("{text}: {e} at {:?}", e.offset))
}

fn err(text: &str, pairs: &[(&str, &str)]) -> (String, Range<usize>) {
    match interpolate(text, &vars(pairs)) {
        Ok(s) => panic!("{text}: expected an error, got {s:?}"),
        Err(e) => (e.to_string(), e.offset),
    }
}

const ABC: &[(&str, &str)] = &[("A", "alpha"), ("EMPTY", ""), ("B_2", "beta")];

#[test]
fn plain_references() {
    assert_eq!(ok("${A}", ABC), "alpha");
    assert_eq!(ok("x-${A}-${B_2}-y", ABC), "x-alpha-beta-y");
    assert_eq!(ok("${EMPTY}", ABC), "");
    assert_eq!(ok("no refs at all", ABC), "no refs at all");
    assert_eq!(ok("", ABC), "");
    assert_eq!(ok("ünï ${A} ✓", ABC), "ünï alpha ✓");
}

#[test]
fn default_when_unset_or_empty() {
    assert_eq!(ok("${A:-d}", ABC), "alpha");
    assert_eq!(ok("${NOPE:-d}", ABC), "d");
    assert_eq!(ok("${EMPTY:-d}", ABC), "d");
    assert_eq!(ok("${NOPE:-}", ABC), "");
    assert_eq!(ok("${NOPE:-a b:c/d}", ABC), "a b:c/d");
}

#[test]
fn alternative_when_set_and_non_empty() {
    assert_eq!(ok("${A:+yes}", ABC), "yes");
    assert_eq!(ok("${EMPTY:+yes}", ABC), "");
    assert_eq!(ok("${NOPE:+yes}", ABC), "");
    assert_eq!(ok("[${A:+-v ${A}}]", ABC), "[-v alpha]");
}

#[test]
fn replacement_first_and_all() {
    let v = &[("V", "a.b.c")];
    assert_eq!(ok("${V/./-}", v), "a-b.c");
    assert_eq!(ok("${V//./-}", v), "a-b-c");
    assert_eq!(ok("${V//./}", v), "abc");
    assert_eq!(ok("${V/.}", v), "ab.c", "missing replacement means delete");
    assert_eq!(ok("${V/x/y}", v), "a.b.c");
    assert_eq!(ok("${V//}", v), "a.b.c", "empty pattern changes nothing");
    assert_eq!(ok("${V//./${SEP}}", &[("V", "a.b"), ("SEP", "::")]), "a::b");
}

#[test]
fn dollar_escapes_and_things_left_alone() {
    assert_eq!(ok("$$", ABC), "$");
    assert_eq!(ok("$${A}", ABC), "${A}");
    assert_eq!(ok("cost: 5$", ABC), "cost: 5$");
    assert_eq!(ok("$A $HOME $1 $", ABC), "$A $HOME $1 $");
    assert_eq!(ok("${{ env.A }}", ABC), "${{ env.A }}");
    assert_eq!(
        ok("${A}${{ format('{0}}', '${A}') }}${A}", ABC),
        "alpha${{ format('{0}}', '${A}') }}alpha",
        "the expression ends at its own `}}`, not one inside a string"
    );
    assert_eq!(ok("${{ unterminated ${A}", ABC), "${{ unterminated ${A}");
}

#[test]
fn nested_values_resolve() {
    let v = &[
        ("REG", "registry.local"),
        ("IMAGE", "${REG}/app"),
        ("REF", "${IMAGE}:${TAG:-latest}"),
    ];
    assert_eq!(ok("${REF}", v), "registry.local/app:latest");
    assert_eq!(ok("${NOPE:-${B_2}}", ABC), "beta");
    assert_eq!(ok("${A:-${B_2}}", ABC), "alpha");
    assert_eq!(ok("${NOPE:-${ALSO_NOPE:-deep}}", ABC), "deep");
    assert_eq!(ok("${X}", &[("X", "$$HOME")]), "$HOME");
}

#[test]
fn unused_branches_are_not_resolved() {
    // An undefined name in a default that is not taken is no error.
    assert_eq!(ok("${A:-${UNDEFINED}}", ABC), "alpha");
    assert_eq!(ok("${NOPE:+${UNDEFINED}}", ABC), "");
}

#[test]
fn undefined_points_at_the_reference() {
    assert_eq!(
        err("x ${NOPE} y", ABC),
        ("undefined variable `NOPE`".into(), 2..9)
    );
    assert_eq!(
        err("${NOPE/a/b}", ABC),
        ("undefined variable `NOPE`".into(), 0..11)
    );
    assert_eq!(
        err("${EMPTY:-${NOPE}}", ABC),
        ("undefined variable `NOPE`".into(), 9..16)
    );
}

#[test]
fn undefined_inside_a_value_points_at_the_outer_reference() {
    assert_eq!(
        err("image: ${IMAGE}", &[("IMAGE", "${REG}/app")]),
        ("undefined variable `REG`".into(), 7..15)
    );
}

#[test]
fn cycles_report_their_path() {
    let v = &[("A", "${B}"), ("B", "x${A}")];
    let e = interpolate("go ${A}", &vars(v)).unwrap_err();
    assert_eq!(
        e.kind,
        VarErrorKind::Cycle(vec!["A".into(), "B".into(), "A".into()])
    );
    assert_eq!(e.offset, 3..7);
    assert_eq!(
        e.to_string(),
        "variables refer to each other in a cycle: `A` → `B` → `A`"
    );
    assert_eq!(
        err("${S}", &[("S", "${S}")]),
        (
            "variables refer to each other in a cycle: `S` → `S`".into(),
            0..4
        )
    );
    assert_eq!(
        err("${A}", &[("A", "${B:-${C}}"), ("C", "${A}")]).0,
        "variables refer to each other in a cycle: `A` → `C` → `A`"
    );
}

#[test]
fn cycles_seen_from_the_variable_being_defined() {
    let v = &[("A", "${B}-a"), ("B", "${A}-b")];
    let e = interpolate_value_of("A", "${B}-a", &vars(v)).unwrap_err();
    assert_eq!(
        (e.to_string(), e.offset),
        (
            "variables refer to each other in a cycle: `A` → `B` → `A`".to_owned(),
            0..4
        )
    );
    let e = interpolate("${B}-a", &vars(v)).unwrap_err();
    assert_eq!(
        e.kind,
        VarErrorKind::Cycle(vec!["B".into(), "A".into(), "B".into()])
    );
    assert_eq!(
        interpolate_value_of("A", "${C}", &vars(&[("C", "c")])),
        Ok("c".to_owned())
    );
}

#[test]
fn a_name_used_twice_is_not_a_cycle() {
    let v = &[("A", "${B}${B}"), ("B", "${C}-${C}"), ("C", "c")];
    assert_eq!(ok("${A}", v), "c-cc-c");
}

#[test]
fn syntax_errors() {
    let cases: &[(&str, &str, Range<usize>)] = &[
        ("a ${A", "unclosed `${`: expected `}`", 2..5),
        ("${", "unclosed `${`: expected `}`", 0..2),
        ("${A:-x", "unclosed `${`: expected `}`", 0..6),
        ("${A/x", "unclosed `${`: expected `}`", 0..5),
        ("${}", "empty variable name in `${}`", 0..3),
        ("${1A}", "variable name `1A` starts with a digit", 0..4),
        (
            "${ A}",
            "expected a variable name after `${`, found ` `",
            0..3,
        ),
        (
            "${A:x}",
            "unexpected `:` after `${A`: expected `}`, `:-`, `:+` or `/`",
            0..4,
        ),
        (
            "${A-x}",
            "unexpected `-` after `${A`: expected `}`, `:-`, `:+` or `/`",
            0..4,
        ),
        (
            "${Ä}",
            "expected a variable name after `${`, found `Ä`",
            0..4,
        ),
    ];
    for (text, message, offset) in cases {
        assert_eq!(
            err(text, ABC),
            ((*message).to_owned(), offset.clone()),
            "{text}"
        );
    }
}

#[test]
fn syntax_error_inside_a_value_names_the_variable() {
    assert_eq!(
        err("x${BAD}", &[("BAD", "${oops")]),
        (
            "in the value of `BAD`: unclosed `${`: expected `}`".into(),
            1..7
        )
    );
}

#[test]
fn depth_and_size_are_capped() {
    let names: Vec<String> = (0..40).map(|i| format!("V{i}")).collect();
    let values: Vec<String> = (0..40).map(|i| format!("${{V{}}}", i + 1)).collect();
    let pairs: Vec<(&str, &str)> = names
        .iter()
        .zip(&values)
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        err("${V0}", &pairs),
        (
            "variables refer to variables more than 32 levels deep".into(),
            0..5
        )
    );

    let nested = format!("{}x{}", "${N:-".repeat(40), "}".repeat(40));
    assert_eq!(
        err(&nested, &[]).0,
        "references nest more than 32 levels deep"
    );

    // Each level doubles: 2^30 bytes unless stopped.
    let names: Vec<String> = (0..31).map(|i| format!("D{i}")).collect();
    let values: Vec<String> = (0..31)
        .map(|i| {
            if i == 30 {
                "xx".to_owned()
            } else {
                format!("${{D{0}}}${{D{0}}}", i + 1)
            }
        })
        .collect();
    let pairs: Vec<(&str, &str)> = names
        .iter()
        .zip(&values)
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        err("${D0}", &pairs),
        (
            "interpolated text is longer than 1048576 bytes".into(),
            0..5
        )
    );
}

#[test]
fn random_input_never_panics() {
    let alphabet = [
        "$", "{", "}", "${", "$$", ":-", ":+", "/", "//", "A", "B", "'", "${{", "}}", "x", "é",
    ];
    let v = &[("A", "${B}"), ("B", "${A:-x}"), ("C", "$")];
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..20_000 {
        let len = rng.usize(0..16);
        let text: String = (0..len)
            .map(|_| alphabet[rng.usize(0..alphabet.len())])
            .collect();
        if let Err(e) = interpolate(&text, &vars(v)) {
            assert!(
                e.offset.start <= e.offset.end && e.offset.end <= text.len(),
                "{text}: {e:?}"
            );
            assert!(text.is_char_boundary(e.offset.start) && text.is_char_boundary(e.offset.end));
        }
    }
}
