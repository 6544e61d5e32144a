//! `kiln plugin build [DIR]`: builds a plugin project into `DIR/dist/<name>.wasm`.
//!
//! A `Cargo.toml` makes it a Rust project (`cargo build --release --target
//! wasm32-wasip2`), an `app.py` a Python one (componentize-py, `action`
//! world). The tools' own output goes to stderr as they print it; stdout
//! holds only the `built …` line, for scripts.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{COMPONENTIZE_PY, WASM_TARGET};
use crate::args::PluginBuildArgs;
use crate::error::CliError;

pub(crate) fn run(args: &PluginBuildArgs) -> Result<u8, CliError> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let (name, built) = if dir.join("Cargo.toml").is_file() {
        build_rust(&dir)?
    } else if dir.join("app.py").is_file() {
        build_python(&dir)?
    } else {
        return Err(CliError::Usage(format!(
            "`{}` is not a plugin project: expected a `Cargo.toml` (Rust) or an `app.py` (Python); create one with `kiln plugin new`",
            dir.display()
        )));
    };
    let dist = dir.join("dist");
    let out = dist.join(format!("{name}.wasm"));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CliError::Io { path, source }
    };
    std::fs::create_dir_all(&dist).map_err(io(&dist))?;
    // componentize-py writes into dist/ itself: never copy a file onto itself.
    let same =
        out.exists() && std::fs::canonicalize(&built).ok() == std::fs::canonicalize(&out).ok();
    if !same {
        std::fs::copy(&built, &out).map_err(io(&built))?;
    }
    let size = std::fs::metadata(&out).map_err(io(&out))?.len();
    println!("built {} ({} KiB)", out.display(), size.div_ceil(1024));
    Ok(0)
}

/// Runs `cargo build`; returns the package name and the built component.
fn build_rust(dir: &Path) -> Result<(String, PathBuf), CliError> {
    check_wasm_target()?;
    let manifest = dir.join("Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let meta = Command::new(&cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .map_err(|e| tool_missing(&cargo, e))?;
    if !meta.status.success() {
        return Err(CliError::Usage(format!(
            "`cargo metadata` failed for `{}`: {}",
            manifest.display(),
            String::from_utf8_lossy(&meta.stderr).trim()
        )));
    }
    let json: serde_json::Value = serde_json::from_slice(&meta.stdout)
        .map_err(|e| CliError::Usage(format!("`cargo metadata` printed no JSON: {e}")))?;
    let name = json["packages"][0]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let target_dir = PathBuf::from(json["target_directory"].as_str().unwrap_or("target"));
    let status = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "--manifest-path",
        ])
        .arg(&manifest)
        .stdout(std::io::stderr())
        .status()
        .map_err(|e| tool_missing(&cargo, e))?;
    if !status.success() {
        return Err(CliError::Usage(format!(
            "`cargo build` of `{}` failed ({status}); its errors are above",
            dir.display()
        )));
    }
    let built = target_dir
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    if !built.is_file() {
        return Err(CliError::Usage(format!(
            "`cargo build` produced no `{}`: the package needs `crate-type = [\"cdylib\"]` under `[lib]`",
            built.display()
        )));
    }
    Ok((name, built))
}

/// Runs componentize-py; returns the project name (its directory's) and the component.
fn build_python(dir: &Path) -> Result<(String, PathBuf), CliError> {
    let abs = std::fs::canonicalize(dir).map_err(|source| CliError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".into());
    if !abs.join("wit").is_dir() {
        return Err(CliError::Usage(format!(
            "`{}` has no `wit/` directory: copy `wit/v0.1.0/` of kiln there (as `kiln plugin new --lang python` does)",
            dir.display()
        )));
    }
    let out = abs.join("dist").join(format!("{name}.wasm"));
    std::fs::create_dir_all(abs.join("dist")).map_err(|source| CliError::Io {
        path: abs.join("dist"),
        source,
    })?;
    // Through the interpreter rather than the `componentize-py` script, so
    // a `pip install --user` works without `~/.local/bin` on PATH.
    let python = std::env::var("KILN_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = "import sys\n\
        try:\n    from componentize_py import script\n\
        except ImportError:\n    sys.exit(99)\n\
        sys.argv[0] = 'componentize-py'\nsys.exit(script())";
    let status = Command::new(&python)
        .args([
            "-c",
            script,
            "-d",
            "wit",
            "-w",
            "action",
            "componentize",
            "app",
            "-o",
        ])
        .arg(&out)
        .current_dir(&abs)
        .stdout(std::io::stderr())
        .status()
        .map_err(|e| tool_missing(&python, e))?;
    match status.code() {
        Some(0) => Ok((name, out)),
        Some(99) => Err(CliError::Usage(format!(
            "componentize-py is not installed for `{python}`: run `{python} -m pip install --user componentize-py=={COMPONENTIZE_PY}`"
        ))),
        _ => Err(CliError::Usage(format!(
            "componentize-py failed for `{}` ({status}); its errors are above",
            dir.display()
        ))),
    }
}

/// The wasm target must be installed before cargo tries (its own error is
/// a page about `core`).
fn check_wasm_target() -> Result<(), CliError> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .map_err(|e| tool_missing(&rustc, e))?;
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let installed =
        out.status.success() && std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some());
    if installed {
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "the `{WASM_TARGET}` target is not installed: run `rustup target add {WASM_TARGET}`"
    )))
}

fn tool_missing(tool: &str, e: std::io::Error) -> CliError {
    CliError::Usage(format!("cannot run `{tool}`: {e}"))
}
