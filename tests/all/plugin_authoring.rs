//! `kiln plugin new` then `kiln plugin build`, in both languages, through the
//! real binary and the real toolchains (cargo + wasm32-wasip2,
//! componentize-py); and the scaffolds' own tests pass.

use std::path::Path;
use std::process::Command;

use crate::support::Kiln;

/// Shared by every scaffold build so kiln-sdk's dependencies compile once.
const BUILD_DIR: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/plugin-builds");

/// A component, not a core module: magic, then version 0x0d, layer 1.
fn assert_component(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..8],
        b"\0asm\x0d\x00\x01\x00",
        "{} is not a component",
        path.display()
    );
}

fn assert_ran(cmd: &mut Command) {
    let out = cmd.output().expect("starts");
    assert!(
        out.status.success(),
        "{cmd:?} failed\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_rust_action_is_scaffolded_tested_and_built() {
    let kiln = Kiln::new().env("CARGO_TARGET_DIR", BUILD_DIR);
    kiln.run_with(["plugin", "new", "--lang", "rust", "hello-rs"])
        .code(0)
        .stdout_is(
            "created Rust action `hello-rs` in hello-rs/\n  test:  cd hello-rs && cargo test\n  build: kiln plugin build hello-rs\n",
        );
    let manifest = kiln.read("hello-rs/Cargo.toml");
    let sdk =
        std::fs::canonicalize(concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk/rust")).unwrap();
    assert!(
        manifest.contains(&format!("kiln-sdk = {{ path = \"{}\" }}", sdk.display())),
        "{manifest}"
    );

    assert_ran(
        Command::new(env!("CARGO"))
            .args(["test", "-q", "--manifest-path"])
            .arg(kiln.path("hello-rs/Cargo.toml"))
            .env("CARGO_TARGET_DIR", BUILD_DIR),
    );

    let out = kiln.run_with(["plugin", "build", "hello-rs"]);
    out.code(0)
        .stdout_has("built hello-rs/dist/hello-rs.wasm (");
    assert_component(&kiln.path("hello-rs/dist/hello-rs.wasm"));
}

#[test]
fn a_python_action_is_scaffolded_tested_and_built() {
    let kiln = Kiln::new();
    kiln.run_with(["plugin", "new", "--lang", "python", "hello-py"])
        .code(0)
        .stdout_has("created Python action `hello-py` in hello-py/\n  test:  cd hello-py && python3 -m unittest\n");
    for file in [
        "app.py",
        "test_app.py",
        "kiln_plugin.py",
        "wit/action.wit",
        "wit/types.wit",
    ] {
        assert!(kiln.path("hello-py").join(file).is_file(), "{file} missing");
    }
    assert_ran(
        Command::new("python3")
            .args(["-m", "unittest", "-q"])
            .current_dir(kiln.path("hello-py")),
    );

    // From inside the project, as a user would.
    let out = kiln
        .command(["plugin", "build"])
        .current_dir(kiln.path("hello-py"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("built ./dist/hello-py.wasm ("),
        "{stdout}"
    );
    assert_component(&kiln.path("hello-py/dist/hello-py.wasm"));
}

#[test]
fn new_refuses_bad_names_and_existing_directories() {
    let kiln = Kiln::new().file("taken/keep.txt", "mine");
    kiln.run_with(["plugin", "new", "taken"])
        .code(2)
        .stderr_is("error: `taken` already exists: choose another name or remove it\n");
    assert_eq!(kiln.read("taken/keep.txt"), "mine");
    kiln.run_with(["plugin", "new", "Bad_Name"]).code(2).stderr_is(
        "error: `Bad_Name` is not a plugin name: use lowercase letters, digits and `-`, starting with a letter (e.g. `slack-notify`)\n",
    );
    kiln.run_with(["plugin", "new", "--lang", "cobol", "x"])
        .code(2)
        .stderr_has("invalid value 'cobol' for '--lang <LANG>'");
}

#[test]
fn new_names_the_missing_sdk() {
    Kiln::new()
        .env("KILN_SDK_PATH", "/nonexistent")
        .run_with(["plugin", "new", "x"])
        .code(2)
        .stderr_is("error: KILN_SDK_PATH is `/nonexistent`, which holds no `Cargo.toml`: point it at the `sdk/rust` directory of a kiln checkout\n");
}

#[test]
fn build_says_what_a_project_is() {
    let kiln = Kiln::new().file("empty/README", "");
    kiln.run_with(["plugin", "build", "empty"]).code(2).stderr_is(
        "error: `empty` is not a plugin project: expected a `Cargo.toml` (Rust) or an `app.py` (Python); create one with `kiln plugin new`\n",
    );
    let kiln = Kiln::new().file("py/app.py", "");
    kiln.run_with(["plugin", "build", "py"]).code(2).stderr_is(
        "error: `py` has no `wit/` directory: copy `wit/v0.1.0/` of kiln there (as `kiln plugin new --lang python` does)\n",
    );
}

#[test]
fn build_names_a_missing_componentize_py() {
    // A Python without componentize-py: `-S` hides site-packages, `-E` the env.
    let kiln = Kiln::new().file("p/app.py", "").file("p/wit/x.wit", "");
    let python = kiln.path("python-bare");
    std::fs::write(&python, "#!/bin/sh\nexec python3 -S -E -s \"$@\"\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&python).unwrap().permissions(),
        0o755,
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    let python = python.display().to_string();
    let kiln = kiln.env("KILN_PYTHON", &python);
    kiln.run_with(["plugin", "build", "p"]).code(2).stderr_is(&format!(
        "error: componentize-py is not installed for `{python}`: run `{python} -m pip install --user componentize-py==0.25.1`\n"
    ));
}

#[test]
fn the_python_helper_converts_to_the_generated_bindings() {
    assert_ran(
        Command::new("python3")
            .args(["-m", "unittest", "-q", "test_kiln_plugin"])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk/python")),
    );
}
