//! `kiln validate` against the fixture pipelines.
//!
//! Each `tests/fixtures/invalid/*.yml` lists every diagnostic it must produce
//! in leading comments: `# expect: LINE:COL CODE MESSAGE`. The test runs
//! `kiln validate --json FILE` and requires exit code 2 and exactly those
//! diagnostics — none missing, none extra — each error with a fix hint.
//! Every `tests/fixtures/valid/*.yml`
//! must validate with exit code 0.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One diagnostic as the fixture states it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Expected {
    line: u64,
    col: u64,
    code: String,
    message: String,
}

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    files
}

/// Parses the `# expect:` lines at the top of a fixture.
fn expectations(path: &Path) -> Vec<Expected> {
    let text = std::fs::read_to_string(path).expect("fixture is readable");
    let mut out: Vec<Expected> = text
        .lines()
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|spec| {
            let (pos, rest) = spec.split_once(' ').expect("`LINE:COL CODE MESSAGE`");
            let (code, message) = rest.split_once(' ').expect("`CODE MESSAGE`");
            let (line, col) = pos.split_once(':').expect("`LINE:COL`");
            Expected {
                line: line.parse().expect("line number"),
                col: col.parse().expect("column number"),
                code: code.to_owned(),
                message: message.to_owned(),
            }
        })
        .collect();
    out.sort();
    out
}

fn validate(path: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["validate", "--json"])
        .arg(path)
        .output()
        .expect("kiln runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The diagnostics `kiln validate --json` printed, checking the shape of
/// every object on the way.
fn reported(stdout: &str, path: &Path) -> Vec<Expected> {
    let value: serde_json::Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("{}: stdout is not JSON ({e}):\n{stdout}", path.display()));
    let items = value.as_array().expect("a JSON array");
    let mut out: Vec<Expected> = items
        .iter()
        .map(|d| {
            for field in [
                "code", "severity", "message", "file", "line", "col", "label", "help",
            ] {
                assert!(
                    d.get(field).is_some(),
                    "{}: diagnostic lacks `{field}`: {d}",
                    path.display()
                );
            }
            // Every error says how to fix it, not only what is wrong.
            assert!(
                d["severity"] != "error"
                    || d["help"].as_str().is_some_and(|h| !h.trim().is_empty()),
                "{}: error without a fix hint: {d}",
                path.display()
            );
            assert!(
                d["file"]
                    .as_str()
                    .is_some_and(|f| f.ends_with(&*path.file_name().unwrap().to_string_lossy())),
                "{}: `file` is {}",
                path.display(),
                d["file"]
            );
            Expected {
                line: d["line"].as_u64().expect("line"),
                col: d["col"].as_u64().expect("col"),
                code: d["code"].as_str().expect("code").to_owned(),
                message: d["message"].as_str().expect("message").to_owned(),
            }
        })
        .collect();
    out.sort();
    out
}

fn show(list: &[Expected]) -> String {
    list.iter()
        .map(|e| format!("# expect: {}:{} {} {}\n", e.line, e.col, e.code, e.message))
        .collect()
}

#[test]
fn invalid_fixtures_report_exactly_their_expected_diagnostics() {
    let files = fixtures("invalid");
    assert!(files.len() >= 15, "only {} invalid fixtures", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let expected = expectations(path);
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` lines",
            path.display()
        );
        let (code, stdout, stderr) = validate(path);
        if code != Some(2) {
            failures.push(format!(
                "{}: exit code {code:?}, want 2\nstderr: {stderr}",
                path.display()
            ));
            continue;
        }
        let got = reported(&stdout, path);
        if got != expected {
            failures.push(format!(
                "{}:\n--- expected\n{}--- reported\n{}",
                path.display(),
                show(&expected),
                show(&got)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn valid_fixtures_pass() {
    let files = fixtures("valid");
    assert!(files.len() >= 3, "only {} valid fixtures", files.len());
    for path in &files {
        let (code, stdout, stderr) = validate(path);
        assert_eq!(
            code,
            Some(0),
            "{}\nstdout: {stdout}\nstderr: {stderr}",
            path.display()
        );
    }
}
