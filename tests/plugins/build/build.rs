//! Builds every guest crate under `tests/plugins/guests` to wasm32-wasip2 in
//! one cargo invocation (shared target dir, `opt-level = "s"`) and writes a
//! path constant per component. A guest directory missing from `PLUGINS`
//! fails the build, so no fixture goes silently unused.

use std::path::{Path, PathBuf};
use std::process::Command;

/// (crate directory, constant name).
const PLUGINS: &[(&str, &str)] = &[
    ("noop", "NOOP"),
    ("echo", "ECHO"),
    ("hostile", "HOSTILE"),
    ("unknown-import", "UNKNOWN_IMPORT"),
    ("health", "HEALTH"),
    ("needy-health", "NEEDY_HEALTH"),
    ("all-at-once", "ALL_AT_ONCE"),
    ("bloated", "BLOATED"),
    ("drowsy", "DROWSY"),
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let guests = manifest_dir.parent().unwrap().join("guests");
    let wit = manifest_dir.join("../../../wit");
    println!("cargo:rerun-if-changed={}", guests.display());
    println!("cargo:rerun-if-changed={}", wit.display());
    for entry in std::fs::read_dir(&guests).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if !entry.path().join("Cargo.toml").is_file() {
            continue;
        }
        if !PLUGINS.iter().any(|(dir, _)| *dir == name) {
            panic!(
                "tests/plugins/guests/{name} is not classified: add it to PLUGINS in \
                 tests/plugins/build/build.rs and use its constant in a test"
            );
        }
        println!(
            "cargo:rerun-if-changed={}",
            entry.path().join("src").display()
        );
    }

    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // <target>/<profile>/build/<pkg>-<hash>/out → <target>: one guest
    // target dir per host target dir, shared across profiles and rebuilds.
    let target_root = out_dir
        .ancestors()
        .nth(4)
        .unwrap_or(&out_dir)
        .join("wasm-test-plugins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(guests.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_root)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR");
    if std::env::var_os("CI").is_some() {
        command.arg("--locked");
    }
    let status = command
        .status()
        .expect("cannot run cargo for the test plugins");
    if !status.success() {
        panic!(
            "building the test plugins failed (is the target installed? `rustup target add wasm32-wasip2`)"
        );
    }
    let release = target_root.join("wasm32-wasip2").join("release");
    let mut code = String::new();
    for (dir, constant) in PLUGINS {
        let file = release.join(format!("{}.wasm", dir.replace('-', "_")));
        assert!(file.is_file(), "{} was not built", file.display());
        code.push_str(&format!(
            "/// `tests/plugins/guests/{dir}` as a component.\npub const {constant}: &str = {:?};\n",
            path_str(&file)
        ));
    }
    std::fs::write(out_dir.join("plugins.rs"), code).unwrap();
}

fn path_str(path: &Path) -> String {
    path.canonicalize().unwrap().display().to_string()
}
