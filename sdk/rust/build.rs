//! Turns `wit/v0.1.0/*.wit` into one inline WIT source inside the
//! `__kiln_generate!` macro, so each plugin crate generates bindings for
//! exactly the world it implements.
//!
//! Why not `wit_bindgen::generate!` here, in the SDK? Every `generate!`
//! embeds its world in a custom section and `wit-component` builds the
//! component from the *union* of all sections it finds: an SDK that
//! generated all three worlds would make every plugin claim to export
//! `run`, `check` and `next` at once. A cargo feature per world does not help
//! either — features unify across a workspace, and the first-party plugins
//! are built in one cargo invocation.

use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit/v0.1.0");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wit"))
            .collect(),
        Err(e) => {
            println!(
                "cargo::error=kiln-sdk needs the WIT contract at `{}` ({e}); build it from a kiln checkout",
                dir.display()
            );
            return;
        }
    };
    files.sort();
    let mut source = String::from("package kiln:plugin@0.1.0;\n");
    for file in &files {
        println!("cargo::rerun-if-changed={}", file.display());
        let text = std::fs::read_to_string(file).expect("read a WIT file");
        // One inline source holds one package declaration; each file repeats it.
        for line in text
            .lines()
            .filter(|l| !l.trim_start().starts_with("package "))
        {
            source.push_str(line);
            source.push('\n');
        }
    }
    assert!(
        !source.contains("\"####"),
        "WIT text must not contain `\"####`"
    );
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("generate.rs");
    let generated = format!(
        r#####"/// Generates the bindings of one world of `kiln:plugin@0.1.0` in the
/// calling crate. Used by the entry-point macros only.
#[doc(hidden)]
#[macro_export]
macro_rules! __kiln_generate {{
    ($world:literal) => {{
        $crate::__private::wit_bindgen::generate!({{
            inline: r####"{source}"####,
            world: $world,
            runtime_path: "::kiln_sdk::__private::wit_bindgen::rt",
        }});
    }};
}}
"#####
    );
    std::fs::write(out, generated).expect("write generate.rs");
}
