//! Builds the `plugins/` workspace for wasm32-wasip2 (release, one cargo
//! invocation, its own target directory) and writes `bundled.rs`, which
//! embeds each component with `include_bytes!`.
//!
//! Every member of the plugins workspace under `actions/`, `health/` or
//! `strategies/` must be listed in [`PLUGINS`]: an unlisted plugin fails
//! the build instead of going silently unbundled.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `(name, world)`; the crate is `plugins/<dir>/<name>`.
const PLUGINS: &[(&str, &str)] = &[
    ("notify", "Action"),
    ("render", "Action"),
    ("http-health", "HealthCheck"),
    ("tcp-health", "HealthCheck"),
    ("rolling", "DeployStrategy"),
    ("blue-green", "DeployStrategy"),
    ("canary", "DeployStrategy"),
];

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let plugins = root.join("plugins");
    for dir in [
        "plugins",
        "wit",
        "sdk/rust/src",
        "sdk/rust/build.rs",
        "sdk/rust/Cargo.toml",
    ] {
        println!("cargo::rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_DIR");

    let manifest =
        std::fs::read_to_string(plugins.join("Cargo.toml")).expect("read plugins/Cargo.toml");
    if let Err(e) = check_listed(&manifest) {
        println!("cargo::error={e}");
        return;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if !target_installed(&rustc) {
        println!(
            "cargo::error=the `{TARGET}` target is not installed: run `rustup target add {TARGET}` (kiln embeds its first-party plugins, built for it)"
        );
        return;
    }

    let target_dir = target_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(&cargo);
    build
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            TARGET,
            "--manifest-path",
        ])
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's flags are for the host, not for wasm.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        build.env_remove(var);
    }
    match build.status() {
        Ok(s) if s.success() => {}
        Ok(s) => {
            println!(
                "cargo::error=building the plugins workspace (`plugins/`) for {TARGET} failed ({s}); its errors are above"
            );
            return;
        }
        Err(e) => {
            println!("cargo::error=cannot run `{cargo}` to build `plugins/`: {e}");
            return;
        }
    }

    let version = workspace_version(&manifest);
    let out_dir = target_dir.join(TARGET).join("release");
    let mut code = String::from(
        "/// Every bundled plugin, in a fixed order.\npub static ALL: &[Bundled] = &[\n",
    );
    for (name, world) in PLUGINS {
        let wasm = out_dir.join(format!("{}.wasm", name.replace('-', "_")));
        assert!(
            wasm.exists(),
            "the plugins build did not produce `{}`",
            wasm.display()
        );
        code.push_str(&format!(
            "    Bundled {{ name: {name:?}, version: {version:?}, world: World::{world}, bytes: include_bytes!({:?}) }},\n",
            wasm.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("bundled.rs");
    std::fs::write(out, code).expect("write bundled.rs");
}

/// Members under `actions/`, `health/` and `strategies/` not in [`PLUGINS`].
fn check_listed(manifest: &str) -> Result<(), String> {
    for line in manifest.lines() {
        let member = line.trim().trim_end_matches(',').trim_matches('"');
        let Some((dir, name)) = member.split_once('/') else {
            continue;
        };
        let listed = PLUGINS.iter().any(|(n, _)| *n == name);
        let is_plugin = ["actions", "health", "strategies"].contains(&dir);
        if is_plugin && !line.trim_start().starts_with('#') && !listed {
            return Err(format!(
                "plugin `{member}` is a member of plugins/Cargo.toml but not listed in runtime/bundled/build.rs `PLUGINS`: add it with its world"
            ));
        }
    }
    Ok(())
}

fn target_installed(rustc: &str) -> bool {
    let Ok(out) = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
    else {
        return false;
    };
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    out.status.success() && std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some())
}

/// `$CARGO_TARGET_DIR/wasm-plugins`, else `wasm-plugins` beside the
/// profile directories of the host build (found from `OUT_DIR`), so debug
/// and release host builds share one plugins build.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("wasm-plugins");
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    // OUT_DIR = <target>/[<triple>/]<profile>/build/<pkg>-<hash>/out
    let profile_dir = out
        .ancestors()
        .nth(3)
        .expect("OUT_DIR has a profile directory");
    profile_dir
        .parent()
        .unwrap_or(profile_dir)
        .join("wasm-plugins")
}

/// `version` of `[workspace.package]`.
fn workspace_version(manifest: &str) -> String {
    let section = manifest
        .split("[workspace.package]")
        .nth(1)
        .expect("[workspace.package] in plugins/Cargo.toml");
    section
        .lines()
        .find_map(|l| l.trim().strip_prefix("version = "))
        .map(|v| v.trim_matches('"').to_owned())
        .expect("a version in [workspace.package]")
}
