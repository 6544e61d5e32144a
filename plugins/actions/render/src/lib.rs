//! `kiln/render`: renders a template file into the workspace.
//!
//! `{{ name }}` in the template is replaced by the variable `name`: a line
//! `name=value` of the `vars` input, or any other input of the step. `{{{{`
//! writes a literal `{{`. An unknown variable or an unclosed `{{` fails the
//! step with the template's line and column.

use std::path::PathBuf;

use kiln_sdk::{Action, ActionError, Capability, Context, FsAccess, InputSpec, Metadata, Outputs};

/// The action.
pub struct Render;

impl Action for Render {
    fn metadata() -> Metadata {
        Metadata::new(
            "render",
            env!("CARGO_PKG_VERSION"),
            "Renders a template file from the inputs into the workspace",
        )
        .input(InputSpec::required(
            "template",
            "template file, relative to the workspace; `{{ name }}` is replaced by variable `name`",
        ))
        .input(InputSpec::required(
            "output",
            "file to write, relative to the workspace (parent directories are created)",
        ))
        .input(InputSpec::with_default(
            "vars",
            "variables, one `name=value` per line; every other input is a variable too",
            "",
        ))
        .output("path", "the file written, relative to the workspace")
        .output("bytes", "its size in bytes")
        .capability(Capability::Fs(FsAccess::Write))
    }

    fn run(ctx: &Context) -> Result<Outputs, ActionError> {
        let template_rel: PathBuf = ctx.input("template")?;
        let output_rel: PathBuf = ctx.input("output")?;
        let vars: String = ctx.input("vars")?;
        let template_path = ctx.workspace_path("template", &template_rel)?;
        let output_path = ctx.workspace_path("output", &output_rel)?;
        let mut variables = Vec::new();
        for (n, line) in vars.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(ActionError::invalid_input(format!(
                    "input `vars` line {}: `{line}` is not `name=value`",
                    n + 1
                )));
            };
            variables.push((k.trim().to_string(), v.to_string()));
        }
        let lookup = |name: &str| {
            variables
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .or_else(|| {
                    ctx.inputs
                        .iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, v)| v.to_string())
                })
        };
        let text = std::fs::read_to_string(&template_path).map_err(|e| {
            ActionError::failed(format!(
                "cannot read template `{}`: {e}",
                template_rel.display()
            ))
        })?;
        let rendered = render(&text, lookup)
            .map_err(|e| ActionError::failed(format!("{}:{e}", template_rel.display())))?;
        if let Some(parent) = output_path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                ActionError::failed(format!("cannot create `{}`: {e}", parent.display()))
            })?;
        }
        std::fs::write(&output_path, &rendered).map_err(|e| {
            ActionError::failed(format!("cannot write `{}`: {e}", output_rel.display()))
        })?;
        kiln_sdk::host::info(format!(
            "rendered {} → {} ({} bytes)",
            template_rel.display(),
            output_rel.display(),
            rendered.len()
        ));
        Ok(Outputs::new()
            .set("path", output_rel.display())
            .set("bytes", rendered.len()))
    }
}

kiln_sdk::action!(Render);

/// Replaces every `{{ name }}` in `template` by `lookup(name)`. The error is
/// `line:col: message`, pointing at the `{{`.
pub fn render(template: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    let mut offset = 0;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        if let Some(tail) = after.strip_prefix("{{") {
            out.push_str("{{");
            offset += start + 4;
            rest = tail;
            continue;
        }
        let at = position(template, offset + start);
        let Some(end) = after.find("}}") else {
            return Err(format!("{at}: `{{{{` is not closed by `}}}}`"));
        };
        let name = after[..end].trim();
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if !valid {
            return Err(format!(
                "{at}: `{{{{{}}}}}` is not a variable name (letters, digits, `_`, `-`, `.`)",
                &after[..end]
            ));
        }
        match lookup(name) {
            Some(value) => out.push_str(&value),
            None => {
                return Err(format!(
                    "{at}: unknown variable `{name}`: set it under `with:` (or as a `vars` line)"
                ));
            }
        }
        offset += start + 2 + end + 2;
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `line:col` (1-based, columns in characters) of byte `offset`.
fn position(text: &str, offset: usize) -> String {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!("{line}:{col}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_sdk::testing::{TestHost, context};

    fn vars(name: &str) -> Option<String> {
        match name {
            "name" => Some("kiln".into()),
            "n" => Some("3".into()),
            _ => None,
        }
    }

    #[test]
    fn metadata_asks_for_a_writable_workspace() {
        let m = Render::metadata();
        assert_eq!(m.capabilities, vec![Capability::Fs(FsAccess::Write)]);
        let required: Vec<_> = m
            .inputs
            .iter()
            .filter(|i| i.required)
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(required, ["template", "output"]);
    }

    #[test]
    fn placeholders_are_replaced_with_or_without_blanks() {
        assert_eq!(
            render("hi {{ name }}, {{n}}x{{name}}!", vars).unwrap(),
            "hi kiln, 3xkiln!"
        );
        assert_eq!(render("no vars", vars).unwrap(), "no vars");
        assert_eq!(render("{{{{ name }}", vars).unwrap(), "{{ name }}");
    }

    #[test]
    fn errors_point_at_the_placeholder() {
        assert_eq!(
            render("a\nb {{ nme }}", vars),
            Err("2:3: unknown variable `nme`: set it under `with:` (or as a `vars` line)".into())
        );
        assert_eq!(
            render("é {{ name", vars),
            Err("1:3: `{{` is not closed by `}}`".into())
        );
        assert_eq!(
            render("{{ a b }}", vars),
            Err("1:1: `{{ a b }}` is not a variable name (letters, digits, `_`, `-`, `.`)".into())
        );
    }

    #[test]
    fn run_renders_into_the_workspace_and_returns_the_path() {
        let dir = tempdir();
        std::fs::write(
            dir.join("greeting.tmpl"),
            "hello, {{ who }} from {{ place }}\n",
        )
        .unwrap();
        let host = TestHost::new();
        let _guard = host.install();
        let ctx = context::<Render>()
            .input("template", "greeting.tmpl")
            .input("output", "out/greeting.txt")
            .input("who", "world")
            .input("vars", "place=kiln\n")
            .workspace(&dir)
            .build();
        let out = Render::run(&ctx).unwrap();
        assert_eq!(out.get("path"), Some("out/greeting.txt"));
        assert_eq!(out.get("bytes"), Some("23"));
        assert_eq!(
            std::fs::read_to_string(dir.join("out/greeting.txt")).unwrap(),
            "hello, world from kiln\n"
        );
        assert_eq!(host.logs().len(), 1);
    }

    #[test]
    fn run_reports_bad_inputs_and_template_errors() {
        let dir = tempdir();
        std::fs::write(dir.join("t"), "{{ missing }}").unwrap();
        let run = |pairs: &[(&str, &str)]| {
            let mut b = context::<Render>().workspace(&dir);
            for (k, v) in pairs {
                b = b.input(k, v);
            }
            Render::run(&b.build()).unwrap_err()
        };
        assert_eq!(
            run(&[("output", "o")]),
            ActionError::InvalidInput("input `template` is required: set it under `with:`".into())
        );
        assert_eq!(
            run(&[("template", "../t"), ("output", "o")]),
            ActionError::InvalidInput(
                "input `template` is `../t`: expected a path relative to the workspace, without `..`"
                    .into()
            )
        );
        assert_eq!(
            run(&[("template", "t"), ("output", "o"), ("vars", "oops")]),
            ActionError::InvalidInput("input `vars` line 1: `oops` is not `name=value`".into())
        );
        assert_eq!(
            run(&[("template", "t"), ("output", "o")]),
            ActionError::Failed(
                "t:1:1: unknown variable `missing`: set it under `with:` (or as a `vars` line)"
                    .into()
            )
        );
        let ActionError::Failed(m) = run(&[("template", "nope"), ("output", "o")]) else {
            panic!("expected a failure");
        };
        assert!(m.starts_with("cannot read template `nope`: "), "{m}");
    }

    fn tempdir() -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kiln-render-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
