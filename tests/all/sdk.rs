//! The "any language" proof: the greet action in Rust and in Python, each
//! built with `kiln plugin build`, run from one pipeline with identical
//! results (examples/plugins/kiln.yml).

use std::path::Path;

use crate::support::Kiln;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/plugins");
const BUILD_DIR: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/plugin-builds");

#[test]
fn the_rust_and_python_greet_actions_render_the_same_file() {
    let example = Path::new(EXAMPLE);
    let _ = std::fs::remove_dir_all(example.join("out"));
    let kiln = Kiln::new().env("CARGO_TARGET_DIR", BUILD_DIR);
    for project in ["greet-rust", "greet-python"] {
        let dir = example.join(project).display().to_string();
        kiln.run_with(["plugin", "build", dir.as_str()])
            .code(0)
            .stdout_has("built ");
    }
    let pipeline = example.join("kiln.yml").display().to_string();
    let state = kiln.path("state").display().to_string();
    let out = kiln.run_with(["run", pipeline.as_str(), "--state-dir", state.as_str()]);
    out.code(0)
        .stdout_has("[compare] identical: hello, kiln!\n");
    let rust = std::fs::read_to_string(example.join("out/rust.txt")).unwrap();
    let python = std::fs::read_to_string(example.join("out/python.txt")).unwrap();
    assert_eq!(
        rust,
        "hello, kiln!\nrendered from greeting.tmpl by a kiln plugin.\n"
    );
    assert_eq!(rust, python);
}
