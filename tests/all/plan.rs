//! `kiln plan` in every format, with names that need quoting.

use crate::support::Kiln;

const PIPELINE: &str = r#"
name: "ship \"it\""
jobs:
  build:
    steps: [run: make]
  test:
    needs: [build]
    strategy: { matrix: { os: [linux, mac] } }
    steps: [run: make test]
  deploy:
    needs: [test]
    steps: [run: make deploy]
"#;

#[test]
fn text() {
    Kiln::new()
        .pipeline(PIPELINE)
        .args(["plan"])
        .run()
        .code(0)
        .stdout_is(
            "ship \"it\": 4 jobs, 3 levels

level 1
  build

level 2
  test (os=linux)  ← build
  test (os=mac)  ← build

level 3
  deploy  ← test (os=linux), test (os=mac)

critical path: build → test (os=linux) → deploy
",
        );
}

#[test]
fn json() {
    let out = Kiln::new()
        .pipeline(PIPELINE)
        .args(["plan", "--format", "json"])
        .run();
    out.code(0);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(plan["name"], "ship \"it\"");
    assert_eq!(
        plan["levels"],
        serde_json::json!([["build"], ["test (os=linux)", "test (os=mac)"], ["deploy"]])
    );
    assert_eq!(
        plan["critical_path"],
        serde_json::json!(["build", "test (os=linux)", "deploy"])
    );
    assert_eq!(
        plan["jobs"][3]["needs"],
        serde_json::json!(["test (os=linux)", "test (os=mac)"])
    );
    assert_eq!(plan["jobs"][1]["key"], "test");
    assert_eq!(plan["jobs"][1]["steps"], serde_json::json!(["make test"]));
}

#[test]
fn dot() {
    Kiln::new()
        .pipeline(PIPELINE)
        .args(["plan", "--format", "dot"])
        .run()
        .code(0)
        .stdout_is(
            r#"digraph "ship \"it\"" {
  rankdir=LR;
  node [shape=box];
  "build";
  "test (os=linux)";
  "test (os=mac)";
  "deploy";
  "build" -> "test (os=linux)";
  "build" -> "test (os=mac)";
  "test (os=linux)" -> "deploy";
  "test (os=mac)" -> "deploy";
}
"#,
        );
}

#[test]
fn mermaid() {
    Kiln::new()
        .pipeline(PIPELINE)
        .args(["plan", "--format", "mermaid"])
        .run()
        .code(0)
        .stdout_is(
            r#"graph TD
  j0["build"]
  j1["test (os=linux)"]
  j2["test (os=mac)"]
  j3["deploy"]
  j0 --> j1
  j0 --> j2
  j1 --> j3
  j2 --> j3
"#,
        );
}

#[test]
fn an_invalid_pipeline_is_not_planned() {
    Kiln::new()
        .pipeline("jobs:\n  a: { needs: [b], steps: [run: x] }\n")
        .args(["plan"])
        .run()
        .code(2)
        .stdout_is("")
        .stderr_has("╭─[kiln.yml:2:16]");
}
