//! Hostile input is refused with one clear diagnostic, fast.

use super::*;

#[test]
fn oversized_file() {
    let yaml = format!("# {}\njobs: {{}}\n", "x".repeat(11 * 1024 * 1024));
    assert_eq!(
        problems(&yaml),
        [
            "1:1 file-too-large the file is 11534348 bytes; pipeline files are limited to 10485760 bytes"
        ]
    );
}

#[test]
fn alias_bomb() {
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        yaml.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let p = problems(&yaml);
    assert_eq!(p.len(), 1);
    assert!(
        p[0].ends_with(
            "alias-expansion-too-large anchors and aliases expand to more than 1000000 nodes"
        ),
        "{p:?}"
    );
}

#[test]
fn deep_nesting_flow_and_block() {
    let flow = format!("jobs: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(
        problems(&flow),
        ["1:262 nesting-too-deep lists and mappings are nested deeper than 256 levels"]
    );
    let block = format!("jobs:\n  {}x\n", "- ".repeat(100_000));
    assert_eq!(
        problems(&block),
        ["2:513 nesting-too-deep lists and mappings are nested deeper than 256 levels"]
    );
}

#[test]
fn syntax_error_points_at_the_scanner_position() {
    let p = problems("jobs:\n  a:\n    steps: [{run: x}\n");
    assert_eq!(p.len(), 1);
    assert!(p[0].starts_with("4:1 yaml-syntax invalid YAML: "), "{p:?}");
}

#[test]
fn duplicate_keys_are_errors() {
    assert_eq!(
        problems("jobs:\n  a:\n    steps: [{run: x}]\n  a:\n    steps: [{run: y}]\n"),
        ["4:3 duplicate-key duplicate key `a`"]
    );
}
