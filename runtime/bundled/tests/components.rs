//! The embedded components are real components of the right world: they
//! validate, export exactly their world's functions, and import only what
//! their world allows. (Running them needs the host, `kiln-wasm`.)

use kiln_bundled::{World, all, find};
use wasmparser::{Parser, Payload, Validator, WasmFeatures};

/// Top-level component imports and exports of `bytes`.
fn interface(bytes: &[u8]) -> (Vec<String>, Vec<String>) {
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.expect("parses") {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth -= 1,
            Payload::ComponentImportSection(s) if depth == 0 => {
                imports.extend(s.into_iter().map(|i| i.unwrap().name.name.to_string()))
            }
            Payload::ComponentExportSection(s) if depth == 0 => {
                exports.extend(s.into_iter().map(|e| e.unwrap().name.name.to_string()))
            }
            _ => {}
        }
    }
    imports.sort();
    exports.sort();
    (imports, exports)
}

#[test]
fn every_plugin_is_bundled_once_under_major_1() {
    let names: Vec<_> = all().iter().map(|b| (b.name, b.major())).collect();
    assert_eq!(
        names,
        [
            ("notify", 1),
            ("render", 1),
            ("http-health", 1),
            ("tcp-health", 1),
            ("rolling", 1),
            ("blue-green", 1),
            ("canary", 1)
        ]
    );
    assert_eq!(
        find("canary", 1).map(|b| b.world),
        Some(World::DeployStrategy)
    );
    assert!(find("canary", 2).is_none());
    assert!(find("nope", 1).is_none());
}

#[test]
fn components_validate_and_export_their_world() {
    for b in all() {
        let mut v = Validator::new_with_features(WasmFeatures::all());
        v.validate_all(b.bytes)
            .unwrap_or_else(|e| panic!("{} does not validate: {e}", b.name));
        assert!(
            Parser::is_component(b.bytes),
            "{} is not a component",
            b.name
        );
        let (imports, exports) = interface(b.bytes);
        let want: &[&str] = match b.world {
            World::Action => &["metadata", "run"],
            World::HealthCheck => &["check", "metadata"],
            World::DeployStrategy => &["metadata", "next"],
            _ => unreachable!("a new world needs its exports listed here"),
        };
        // Interface-typed exports (`kiln:plugin/types@0.1.0`, …) may sit
        // beside the functions; the functions must be exactly the world's.
        let funcs: Vec<_> = exports
            .iter()
            .filter(|e| !e.contains(':'))
            .map(String::as_str)
            .collect();
        assert_eq!(funcs, want, "{} exports {exports:?}", b.name);

        let kiln: Vec<_> = imports
            .iter()
            .filter(|i| i.starts_with("kiln:"))
            .map(String::as_str)
            .collect();
        let want_kiln: &[&str] = match b.world {
            World::Action => &[
                "kiln:plugin/artifacts@0.1.0",
                "kiln:plugin/host@0.1.0",
                "kiln:plugin/types@0.1.0",
            ],
            World::HealthCheck => &[
                "kiln:plugin/health-types@0.1.0",
                "kiln:plugin/host@0.1.0",
                "kiln:plugin/types@0.1.0",
            ],
            _ => &[
                "kiln:plugin/health-types@0.1.0",
                "kiln:plugin/strategy-types@0.1.0",
                "kiln:plugin/types@0.1.0",
            ],
        };
        let kiln_ok = kiln
            .iter()
            .all(|i| want_kiln.contains(i) || *i == "kiln:plugin/action-types@0.1.0");
        assert!(kiln_ok, "{} imports {kiln:?}", b.name);
        for i in &imports {
            assert!(
                // Names without a package are the world's `use`d types.
                !i.contains(':') || i.starts_with("kiln:plugin/") || i.starts_with("wasi:"),
                "{} imports `{i}`, which no kiln host provides",
                b.name
            );
        }
        if b.world == World::DeployStrategy {
            // Rust's std links stdio, environment and exit even into pure
            // code; a strategy must reach nothing else (no files, sockets,
            // clocks or randomness), so its decisions stay replayable.
            for i in imports.iter().filter(|i| i.starts_with("wasi:")) {
                assert!(
                    i.starts_with("wasi:cli/") || i.starts_with("wasi:io/"),
                    "strategy {} imports `{i}`",
                    b.name
                );
            }
        }
    }
}
