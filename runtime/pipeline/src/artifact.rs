//! Artifact names and the paths artifacts and caches may name.
//!
//! One rule for every producer of a name: `artifacts:` keys, the seed's
//! `artifact:` steps, `kiln artifacts get`, and plugins through the
//! `artifacts` WIT import (the store checks names with [`check_name`] too).

/// Longest artifact name, in bytes.
pub const MAX_NAME: usize = 255;

/// Checks an artifact name: non-empty, at most [`MAX_NAME`] bytes, no path
/// separator (`/`, `\`), no NUL or other control character, no `..`, not
/// `.`. Names become file names and table keys, so nothing in one may
/// address another place. The error says what is wrong, in lowercase.
pub fn check_name(name: &str) -> Result<(), String> {
    let problem = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_NAME {
        "it is longer than 255 bytes"
    } else if name.contains(['/', '\\']) {
        "it contains a path separator"
    } else if name.contains('\0') {
        "it contains a NUL byte"
    } else if name.chars().any(char::is_control) {
        "it contains a control character"
    } else if name.contains("..") {
        "it contains `..`"
    } else if name == "." {
        "it is `.`"
    } else {
        return Ok(());
    };
    Err(format!(
        "invalid artifact name `{}`: {problem}",
        name.escape_debug()
    ))
}

/// The artifact name a seed `artifact: PATH` step gives its path:
/// `dist/` → `dist`, `out/app.tar` → `out-app.tar`.
pub fn name_for_path(path: &str) -> String {
    let trimmed = path.trim().trim_start_matches("./").trim_matches('/');
    trimmed.replace('/', "-")
}

/// How to write a path that [`check_path`] accepts, for diagnostics.
pub(crate) const PATH_HELP: &str =
    "write a path relative to the workspace, like `target/app` or `dist/*.tar.gz`, without `..`";

/// Checks a path an artifact or cache takes files from. Artifact paths
/// (`workspace_only`) must be relative and stay inside the workspace;
/// cache paths may also be absolute or start with `~/` (the home
/// directory), because tool caches live there.
pub fn check_path(path: &str, workspace_only: bool) -> Result<(), String> {
    if path.trim().is_empty() {
        return Err("the path is empty".into());
    }
    let home = path.starts_with("~/");
    let absolute = path.starts_with('/');
    if workspace_only && (home || absolute) {
        return Err(format!(
            "`{path}` is outside the workspace; artifact paths are relative to the workspace"
        ));
    }
    if path.contains('\0') {
        return Err(format!("`{}` contains a NUL byte", path.escape_debug()));
    }
    if path.split('/').any(|segment| segment == "..") {
        return Err(format!(
            "`{path}` contains `..`; name the files from the workspace down"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["app", "dist", "report.xml", "test (shard=1)", "a-b_c"] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        let bad = |name: &str| check_name(name).unwrap_err();
        assert_eq!(bad(""), "invalid artifact name ``: it is empty");
        assert_eq!(
            bad("a/b"),
            "invalid artifact name `a/b`: it contains a path separator"
        );
        assert_eq!(
            bad("a\\b"),
            "invalid artifact name `a\\\\b`: it contains a path separator"
        );
        assert_eq!(
            bad("a\0b"),
            "invalid artifact name `a\\0b`: it contains a NUL byte"
        );
        assert_eq!(
            bad("a\nb"),
            "invalid artifact name `a\\nb`: it contains a control character"
        );
        assert_eq!(bad(".."), "invalid artifact name `..`: it contains `..`");
        assert_eq!(
            bad("x..y"),
            "invalid artifact name `x..y`: it contains `..`"
        );
        assert_eq!(bad("."), "invalid artifact name `.`: it is `.`");
        let long = "n".repeat(256);
        assert_eq!(
            bad(&long),
            format!("invalid artifact name `{long}`: it is longer than 255 bytes")
        );
        assert_eq!(check_name(&long[..255]), Ok(()));
    }

    #[test]
    fn names_for_paths() {
        assert_eq!(name_for_path("dist/"), "dist");
        assert_eq!(name_for_path("./out/app.tar"), "out-app.tar");
    }

    #[test]
    fn paths() {
        assert_eq!(check_path("dist/**/*.js", true), Ok(()));
        assert_eq!(check_path("~/.cargo/registry", false), Ok(()));
        assert_eq!(
            check_path("~/.cargo", true).unwrap_err(),
            "`~/.cargo` is outside the workspace; artifact paths are relative to the workspace"
        );
        assert_eq!(
            check_path("a/../../etc", false).unwrap_err(),
            "`a/../../etc` contains `..`; name the files from the workspace down"
        );
        assert_eq!(check_path(" ", true).unwrap_err(), "the path is empty");
    }
}
