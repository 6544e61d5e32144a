//! The any-language example action: renders the `template` file with the
//! step's inputs (`{{ name }}` → the `name` input, defaults included) into
//! `output`, and returns `path` and the first line as `greeting`.
//! `../greet-python/app.py` does exactly the same.

use std::path::PathBuf;

use kiln_sdk::{Action, ActionError, Capability, Context, FsAccess, InputSpec, Metadata, Outputs};

/// The action.
pub struct Greet;

impl Action for Greet {
    fn metadata() -> Metadata {
        Metadata::new(
            "greet",
            "0.1.0",
            "Renders a greeting from a template into the workspace",
        )
        .input(InputSpec::required("name", "who to greet"))
        .input(InputSpec::with_default(
            "template",
            "template file in the workspace",
            "greeting.tmpl",
        ))
        .input(InputSpec::with_default(
            "output",
            "file to write in the workspace",
            "greeting.txt",
        ))
        .output("path", "the file written")
        .output("greeting", "its first line")
        .capability(Capability::Fs(FsAccess::Write))
    }

    fn run(ctx: &Context) -> Result<Outputs, ActionError> {
        // Required: checked before any file is touched.
        let _name: String = ctx.input("name")?;
        let template: PathBuf = ctx.input("template")?;
        let output: String = ctx.input("output")?;
        let template_path = ctx.workspace_path("template", &template)?;
        let output_path = ctx.workspace_path("output", output.as_ref())?;
        let mut text = std::fs::read_to_string(&template_path).map_err(|e| {
            ActionError::failed(format!(
                "cannot read template `{}`: {e}",
                template.display()
            ))
        })?;
        // Every declared input (with its default) and every given one.
        let mut names: Vec<String> = Self::metadata()
            .inputs
            .into_iter()
            .map(|i| i.name)
            .collect();
        names.extend(ctx.inputs.iter().map(|(k, _)| k.to_string()));
        for name in names {
            if let Some(value) = ctx.inputs.raw(&name) {
                text = text.replace(&format!("{{{{ {name} }}}}"), value);
            }
        }
        if let Some(parent) = output_path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                ActionError::failed(format!("cannot create `{}`: {e}", parent.display()))
            })?;
        }
        std::fs::write(&output_path, &text)
            .map_err(|e| ActionError::failed(format!("cannot write `{output}`: {e}")))?;
        kiln_sdk::host::info(format!("wrote {output}"));
        let greeting = text.lines().next().unwrap_or_default().to_string();
        Ok(Outputs::new()
            .set("path", &output)
            .set("greeting", greeting))
    }
}

kiln_sdk::action!(Greet);

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_sdk::testing::{TestHost, context};

    #[test]
    fn renders_the_template_and_returns_the_first_line() {
        let dir = std::env::temp_dir().join(format!("greet-rust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("greeting.tmpl"),
            "hello, {{ name }}!\nto {{ output }}\n",
        )
        .unwrap();
        let host = TestHost::new();
        let _guard = host.install();
        let ctx = context::<Greet>()
            .input("name", "kiln")
            .input("output", "out/g.txt")
            .workspace(&dir)
            .build();
        let out = Greet::run(&ctx).unwrap();
        assert_eq!(out.get("greeting"), Some("hello, kiln!"));
        assert_eq!(out.get("path"), Some("out/g.txt"));
        assert_eq!(
            std::fs::read_to_string(dir.join("out/g.txt")).unwrap(),
            "hello, kiln!\nto out/g.txt\n"
        );
        assert_eq!(host.logs()[0].1, "wrote out/g.txt");
    }

    #[test]
    fn a_missing_name_is_an_invalid_input() {
        let ctx = context::<Greet>().workspace("/nonexistent").build();
        assert_eq!(
            Greet::run(&ctx),
            Err(ActionError::InvalidInput(
                "input `name` is required: set it under `with:`".into()
            ))
        );
    }
}
