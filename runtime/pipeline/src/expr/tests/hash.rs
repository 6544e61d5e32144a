//! `hashFiles` against a real directory tree.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use super::*;
use crate::expr::hash_files::match_one;

/// A scratch workspace removed on drop.
struct Workspace(PathBuf);

impl Workspace {
    fn new(files: &[(&str, &str)]) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kiln-hashfiles-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        for (path, content) in files {
            let full = dir.join(path);
            fs::create_dir_all(full.parent().unwrap()).unwrap();
            fs::write(full, content).unwrap();
        }
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn hash(&self, args: &str) -> Result<String, String> {
        let cx = Context {
            workspace: Some(&self.0),
            ..cx()
        };
        let e = Expr::parse(&format!("hashFiles({args})")).map_err(|e| e.message)?;
        match e.eval(&cx) {
            Ok(Value::String(s)) => Ok(s),
            Ok(other) => Err(format!("not a string: {other}")),
            Err(e) => Err(e.message),
        }
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// GitHub's algorithm written out: sha256 of the per-file sha256 digests.
fn expected(root: &Path, sorted_files: &[&str]) -> String {
    let mut outer = Sha256::new();
    for f in sorted_files {
        outer.update(Sha256::digest(fs::read(root.join(f)).unwrap()));
    }
    outer
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn tree() -> Workspace {
    Workspace::new(&[
        ("Cargo.lock", "lock"),
        ("a/package-lock.json", "1"),
        ("a/b/package-lock.json", "2"),
        ("node_modules/x/package-lock.json", "3"),
        ("src/main.rs", "fn main() {}"),
        ("src/lib.rs", "//"),
        ("src/deep/mod.rs", "//"),
        ("notes.txt", "n"),
    ])
}

#[test]
fn single_file() {
    let ws = tree();
    assert_eq!(
        ws.hash("'Cargo.lock'"),
        Ok(expected(&ws.0, &["Cargo.lock"]))
    );
    assert_eq!(
        ws.hash("'./Cargo.lock'"),
        Ok(expected(&ws.0, &["Cargo.lock"]))
    );
}

#[test]
fn globstar_and_negation() {
    let ws = tree();
    let all = [
        "a/b/package-lock.json",
        "a/package-lock.json",
        "node_modules/x/package-lock.json",
    ];
    assert_eq!(ws.hash("'**/package-lock.json'"), Ok(expected(&ws.0, &all)));
    assert_eq!(
        ws.hash("'**/package-lock.json', '!**/node_modules/**'"),
        Ok(expected(&ws.0, &all[..2]))
    );
    assert_eq!(
        ws.hash("'**/package-lock.json', '!node_modules'"),
        Ok(expected(&ws.0, &all[..2])),
        "excluding a directory excludes what is below it"
    );
}

#[test]
fn star_and_question_mark_stay_within_a_segment() {
    let ws = tree();
    assert_eq!(
        ws.hash("'src/*.rs'"),
        Ok(expected(&ws.0, &["src/lib.rs", "src/main.rs"]))
    );
    assert_eq!(
        ws.hash("'src/ma??.rs'"),
        Ok(expected(&ws.0, &["src/main.rs"]))
    );
    assert_eq!(
        ws.hash("'src/**/*.rs'"),
        Ok(expected(
            &ws.0,
            &["src/deep/mod.rs", "src/lib.rs", "src/main.rs"]
        ))
    );
}

#[test]
fn a_directory_pattern_matches_its_files() {
    let ws = tree();
    assert_eq!(
        ws.hash("'src'"),
        Ok(expected(
            &ws.0,
            &["src/deep/mod.rs", "src/lib.rs", "src/main.rs"]
        ))
    );
}

#[test]
fn nothing_matched_is_empty() {
    let ws = tree();
    assert_eq!(ws.hash("'*.nope'"), Ok(String::new()));
    assert_eq!(ws.hash("'missing/dir/**'"), Ok(String::new()));
    assert_eq!(ws.hash("'notes.txt', '!notes.txt'"), Ok(String::new()));
    let no_workspace = Expr::parse("hashFiles('**')").unwrap().eval(&cx());
    assert_eq!(no_workspace, Ok(json!("")));
}

#[test]
fn a_later_pattern_re_includes() {
    let ws = tree();
    assert_eq!(
        ws.hash("'*.txt', '!notes.txt', 'notes.*'"),
        Ok(expected(&ws.0, &["notes.txt"]))
    );
}

#[test]
fn patterns_cannot_leave_the_workspace() {
    let ws = tree();
    assert_eq!(
        ws.hash("'../x'"),
        Err("`hashFiles` pattern `../x` leaves the workspace".into())
    );
    assert_eq!(
        ws.hash("'/etc/passwd'"),
        Err(
            "`hashFiles` pattern `/etc/passwd` is absolute; patterns are relative to the workspace"
                .into()
        )
    );
}

#[cfg(unix)]
#[test]
fn symlinks_outside_the_workspace_are_ignored() {
    let ws = tree();
    let outside = Workspace::new(&[("secret.txt", "s")]);
    std::os::unix::fs::symlink(outside.0.join("secret.txt"), ws.0.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(ws.0.join("notes.txt"), ws.0.join("inside.txt")).unwrap();
    std::os::unix::fs::symlink(&ws.0, ws.0.join("loop")).unwrap();
    assert_eq!(ws.hash("'link.txt'"), Ok(String::new()));
    assert_eq!(ws.hash("'inside.txt'"), Ok(expected(&ws.0, &["notes.txt"])));
    // The directory symlink is not followed, so `**` terminates.
    assert_eq!(
        ws.hash("'**/notes.txt'"),
        Ok(expected(&ws.0, &["notes.txt"]))
    );
}

#[test]
fn segment_matcher() {
    let cases = [
        ("*", "", true),
        ("*", "abc", true),
        ("a*c", "abbbc", true),
        ("a*c", "abbb", false),
        ("?", "", false),
        ("??", "ab", true),
        ("*.rs", "main.rs", true),
        ("*.rs", "main.rsx", false),
        ("a*b*c", "aXbYbZc", true),
        ("abc", "abd", false),
    ];
    for (pattern, text, expected) in cases {
        assert_eq!(
            match_one(pattern.as_bytes(), text.as_bytes()),
            expected,
            "{pattern} ~ {text}"
        );
    }
    // Backtracking stays linear-ish: this would take ages if exponential.
    let text = "a".repeat(5000);
    assert!(!match_one("*a*a*a*a*a*a*a*b".as_bytes(), text.as_bytes()));
}
