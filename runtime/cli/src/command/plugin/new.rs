//! `kiln plugin new --lang rust|python NAME`: a buildable, tested project.

use std::path::{Path, PathBuf};

use crate::args::{PluginLang, PluginNewArgs};
use crate::error::CliError;

/// The WIT contract, copied into Python projects (componentize-py reads it).
const WIT: &[(&str, &str)] = &[
    (
        "action.wit",
        include_str!("../../../../../wit/v0.1.0/action.wit"),
    ),
    (
        "health.wit",
        include_str!("../../../../../wit/v0.1.0/health.wit"),
    ),
    (
        "strategy.wit",
        include_str!("../../../../../wit/v0.1.0/strategy.wit"),
    ),
    (
        "types.wit",
        include_str!("../../../../../wit/v0.1.0/types.wit"),
    ),
];
const KILN_PLUGIN_PY: &str = include_str!("../../../../../sdk/python/kiln_plugin.py");
const APP_PY: &str = include_str!("../../../../../sdk/python/template/app.py");
const TEST_APP_PY: &str = include_str!("../../../../../sdk/python/template/test_app.py");
const CARGO_TOML: &str = include_str!("templates/rust/Cargo.toml");
const LIB_RS: &str = include_str!("templates/rust/lib.rs");

/// Where this kiln was built from: its `sdk/rust`, if the checkout is still there.
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk/rust");

pub(crate) fn run(args: &PluginNewArgs) -> Result<u8, CliError> {
    check_name(&args.name)?;
    let dir = PathBuf::from(&args.name);
    if dir.exists() {
        return Err(CliError::Usage(format!(
            "`{}` already exists: choose another name or remove it",
            args.name
        )));
    }
    let files = match args.lang {
        PluginLang::Rust => rust_files(&args.name, &sdk_path()?),
        PluginLang::Python => python_files(&args.name),
    };
    for (path, contents) in &files {
        write(&dir.join(path), contents)?;
    }
    let lang = match args.lang {
        PluginLang::Rust => "Rust",
        PluginLang::Python => "Python",
    };
    let test = match args.lang {
        PluginLang::Rust => "cargo test",
        PluginLang::Python => "python3 -m unittest",
    };
    println!("created {lang} action `{}` in {}/", args.name, args.name);
    println!("  test:  cd {} && {test}", args.name);
    println!("  build: kiln plugin build {}", args.name);
    Ok(0)
}

/// A plugin name: a lowercase letter, then lowercase letters, digits and `-`.
fn check_name(name: &str) -> Result<(), CliError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if ok {
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "`{name}` is not a plugin name: use lowercase letters, digits and `-`, starting with a letter (e.g. `slack-notify`)"
    )))
}

/// `KILN_SDK_PATH`, else the `sdk/rust` of the checkout kiln was built from.
fn sdk_path() -> Result<String, CliError> {
    if let Some(p) = std::env::var_os("KILN_SDK_PATH") {
        let path = PathBuf::from(&p);
        if !path.join("Cargo.toml").is_file() {
            return Err(CliError::Usage(format!(
                "KILN_SDK_PATH is `{}`, which holds no `Cargo.toml`: point it at the `sdk/rust` directory of a kiln checkout",
                path.display()
            )));
        }
        return Ok(absolute(&path));
    }
    let built = Path::new(BUILT_SDK);
    if built.join("Cargo.toml").is_file() {
        return Ok(absolute(built));
    }
    Err(CliError::Usage(format!(
        "cannot find kiln-sdk (it is not on crates.io, and `{BUILT_SDK}` is gone): set KILN_SDK_PATH to the `sdk/rust` directory of a kiln checkout"
    )))
}

fn absolute(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

fn rust_files(name: &str, sdk: &str) -> Vec<(String, String)> {
    let fill = |t: &str| t.replace("{{name}}", name).replace("{{sdk_path}}", sdk);
    vec![
        ("Cargo.toml".into(), fill(CARGO_TOML)),
        ("src/lib.rs".into(), fill(LIB_RS)),
        (".gitignore".into(), "/target\n/dist\n".into()),
    ]
}

fn python_files(name: &str) -> Vec<(String, String)> {
    let fill = |t: &str| t.replace("{{name}}", name);
    let mut files = vec![
        ("app.py".into(), fill(APP_PY)),
        ("test_app.py".into(), fill(TEST_APP_PY)),
        ("kiln_plugin.py".into(), KILN_PLUGIN_PY.into()),
        (".gitignore".into(), "/dist\n__pycache__/\n".into()),
    ];
    files.extend(WIT.iter().map(|(f, t)| (format!("wit/{f}"), (*t).into())));
    files
}

fn write(path: &Path, contents: &str) -> Result<(), CliError> {
    let io = |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, contents).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["a", "slack-notify", "x2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Ab", "2x", "a_b", "a-", "../x"] {
            let err = check_name(bad).unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "`{bad}` is not a plugin name: use lowercase letters, digits and `-`, starting with a letter (e.g. `slack-notify`)"
                )
            );
        }
    }

    #[test]
    fn the_example_carries_the_same_helper_and_wit_as_the_scaffold() {
        let example = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/plugins/greet-python"
        );
        let helper = std::fs::read_to_string(format!("{example}/kiln_plugin.py")).unwrap();
        assert!(
            helper == KILN_PLUGIN_PY,
            "examples/plugins/greet-python/kiln_plugin.py differs from sdk/python/kiln_plugin.py: copy it"
        );
        for (file, text) in WIT {
            let copy = std::fs::read_to_string(format!("{example}/wit/{file}")).unwrap();
            assert!(
                copy == *text,
                "examples/plugins/greet-python/wit/{file} differs from wit/v0.1.0: copy it"
            );
        }
    }
}
