use super::loader::*;
use super::node::*;
use crate::diagnostic::Diagnostic;
use crate::source::Span;

fn doc(text: &str) -> Document {
    parse(text, Limits::default()).expect("parses")
}

fn root(text: &str) -> Node {
    doc(text).root.expect("has a root")
}

fn entries(node: &Node) -> &[Entry] {
    match &node.kind {
        NodeKind::Mapping(e) => e,
        other => panic!("not a mapping: {other:?}"),
    }
}

fn get<'n>(node: &'n Node, key: &str) -> &'n Node {
    &entries(node)
        .iter()
        .find(|e| e.key.name == key)
        .expect(key)
        .value
}

fn text(node: &Node) -> &str {
    &node.scalar().expect("scalar").value
}

fn keys(node: &Node) -> Vec<&str> {
    entries(node).iter().map(|e| e.key.name.as_str()).collect()
}

fn err(text: &str, limits: Limits) -> Diagnostic {
    parse(text, limits).expect_err("rejected")
}

#[test]
fn spans_are_bytes_and_one_based_line_col() {
    let r = root("a: 1\nbb: 'x y'\n");
    let e = &entries(&r)[1];
    assert_eq!(
        e.key.span,
        Span {
            start: 5,
            end: 7,
            line: 2,
            col: 1
        }
    );
    assert_eq!(e.value.span.start, 9);
    assert_eq!(e.value.span.col, 5);
    assert_eq!(e.value.scalar().unwrap().verbatim_at, Some(10));
}

#[test]
fn verbatim_only_when_text_maps_one_to_one() {
    let r = root("a: \"x\\ty\"\nb: |\n  lit\nc: plain\n");
    assert_eq!(get(&r, "a").scalar().unwrap().verbatim_at, None);
    assert_eq!(get(&r, "b").scalar().unwrap().verbatim_at, None);
    assert_eq!(get(&r, "b").scalar().unwrap().style, Style::Block);
    assert_eq!(get(&r, "c").scalar().unwrap().verbatim_at, Some(24));
}

#[test]
fn quoted_and_tagged_true_stay_strings() {
    let r = root("a: \"true\"\nb: !!str 3\nc: true\n");
    assert_eq!(get(&r, "a").scalar().unwrap().ty(), ScalarType::Str);
    assert_eq!(get(&r, "b").scalar().unwrap().ty(), ScalarType::Str);
    assert_eq!(get(&r, "c").scalar().unwrap().ty(), ScalarType::Bool(true));
}

#[test]
fn aliases_copy_the_anchored_node() {
    let r = root("a: &x {k: v}\nb: *x\n");
    assert_eq!(text(get(get(&r, "b"), "k")), "v");
}

#[test]
fn merge_key_single_and_list_explicit_keys_win() {
    let r = root(
        "base: &b {x: 1, y: 2}\nother: &o {y: 3, z: 4}\n\
         one: {<<: *b, y: 9}\nmany: {w: 0, <<: [*b, *o]}\n",
    );
    let one = get(&r, "one");
    assert_eq!(keys(one), ["x", "y"]);
    assert_eq!(text(get(one, "y")), "9");
    let many = get(&r, "many");
    assert_eq!(keys(many), ["w", "x", "y", "z"]);
    assert_eq!(text(get(many, "y")), "2", "earlier merge source wins");
}

#[test]
fn merge_of_a_scalar_is_a_type_error() {
    let d = doc("a: {<<: 3}\n");
    assert_eq!(d.diagnostics.len(), 1);
    assert_eq!(d.diagnostics[0].code, "wrong-type");
    assert_eq!(
        d.diagnostics[0].message,
        "expected a mapping or a list of mappings for `<<`, found a number"
    );
}

#[test]
fn duplicate_key_points_at_the_second_and_names_the_first_line() {
    let d = doc("jobs:\n  a: 1\n  b: 2\n  a: 3\n");
    assert_eq!(d.diagnostics.len(), 1);
    let diag = &d.diagnostics[0];
    assert_eq!(diag.code, "duplicate-key");
    assert_eq!(diag.message, "duplicate key `a`");
    assert_eq!((diag.span.line, diag.span.col), (4, 3));
    assert_eq!(
        diag.label.as_deref(),
        Some("`a` is already defined on line 2")
    );
    let jobs = get(d.root.as_ref().unwrap(), "jobs");
    assert_eq!(text(get(jobs, "a")), "1", "the first definition is kept");
}

#[test]
fn duplicate_detection_in_large_mappings() {
    let mut text = String::new();
    for i in 0..100 {
        text.push_str(&format!("k{i}: 1\n"));
    }
    text.push_str("k42: 2\n");
    let d = doc(&text);
    assert_eq!(d.diagnostics.len(), 1);
    assert_eq!(d.diagnostics[0].span.line, 101);
}

#[test]
fn syntax_error_at_scanner_position() {
    let d = err("a: [1, 2\nb: 3\n", Limits::default());
    assert_eq!(d.code, "yaml-syntax");
    assert!(d.message.starts_with("invalid YAML: "), "{}", d.message);
    assert_eq!((d.span.line, d.span.col), (2, 2));
}

#[test]
fn unknown_alias_is_a_syntax_error() {
    let d = err("a: *nope\n", Limits::default());
    assert_eq!(d.code, "yaml-syntax");
}

#[test]
fn second_document_is_rejected() {
    let d = err("a: 1\n---\nb: 2\n", Limits::default());
    assert_eq!(d.code, "multiple-documents");
    assert_eq!(d.span.line, 2);
}

#[test]
fn empty_file_has_no_root() {
    assert!(doc("").root.is_none());
    assert!(doc("# only a comment\n").root.is_none());
}

#[test]
fn alias_bomb_is_rejected_quickly() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let start = std::time::Instant::now();
    let d = err(&text, Limits::default());
    assert!(start.elapsed().as_secs() < 2);
    assert_eq!(d.code, "alias-expansion-too-large");
    assert_eq!(
        d.message,
        "anchors and aliases expand to more than 1000000 nodes"
    );
}

#[test]
fn deep_flow_nesting_is_rejected_before_recursion() {
    for text in [
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        "{a: ".repeat(100_000),
    ] {
        let d = err(&text, Limits::default());
        assert_eq!(d.code, "nesting-too-deep");
        assert_eq!(
            d.message,
            "lists and mappings are nested deeper than 256 levels"
        );
    }
}

#[test]
fn deep_block_nesting_is_rejected_at_the_limit() {
    let text = format!("{}x\n", "- ".repeat(100_000));
    let d = err(&text, Limits::default());
    assert_eq!(d.code, "nesting-too-deep");
    assert_eq!(
        d.message,
        "lists and mappings are nested deeper than 256 levels"
    );
    assert_eq!((d.span.line, d.span.col), (1, 513));
}

#[test]
fn oversized_file_is_rejected_before_parsing() {
    let limits = Limits {
        max_bytes: 10,
        ..Limits::default()
    };
    let d = err("a: 12345678901\n", limits);
    assert_eq!(d.code, "file-too-large");
    assert_eq!(
        d.message,
        "the file is 15 bytes; pipeline files are limited to 10 bytes"
    );
}

#[test]
fn non_string_keys_are_reported() {
    let d = doc("? [a]\n: 1\nb: 2\n");
    assert_eq!(d.diagnostics[0].code, "wrong-type");
    assert_eq!(
        d.diagnostics[0].message,
        "expected a string as mapping key, found a list"
    );
    assert_eq!(keys(d.root.as_ref().unwrap()), ["b"]);
}
