//! {{name}}: a kiln action in Rust.
//!
//! Build: `kiln plugin build` (or `cargo build --release --target wasm32-wasip2`).
//! Test:  `cargo test`.

use kiln_sdk::{Action, ActionError, Context, InputSpec, Metadata, Outputs};

/// The action.
pub struct Plugin;

impl Action for Plugin {
    fn metadata() -> Metadata {
        // Declare what the action needs with `.capability(…)`; the pipeline
        // grants it under `permissions:`.
        Metadata::new("{{name}}", env!("CARGO_PKG_VERSION"), "Says hello")
            .input(InputSpec::with_default("name", "who to greet", "world"))
            .output("greeting", "what was said")
    }

    fn run(ctx: &Context) -> Result<Outputs, ActionError> {
        let name: String = ctx.input("name")?;
        let greeting = format!("hello, {name}");
        kiln_sdk::host::info(&greeting);
        Ok(Outputs::new().set("greeting", greeting))
    }
}

kiln_sdk::action!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_sdk::testing::{TestHost, context};

    #[test]
    fn greets_the_default() {
        let host = TestHost::new();
        let _guard = host.install();
        let out = Plugin::run(&context::<Plugin>().build()).unwrap();
        assert_eq!(out.get("greeting"), Some("hello, world"));
        assert_eq!(host.logs().len(), 1);
    }

    #[test]
    fn greets_the_input() {
        let out = Plugin::run(&context::<Plugin>().input("name", "kiln").build()).unwrap();
        assert_eq!(out.get("greeting"), Some("hello, kiln"));
    }
}
