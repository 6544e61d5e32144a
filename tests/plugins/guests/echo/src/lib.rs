//! A well-behaved action that uses every grant: inputs and defaults, a
//! secret, an env variable, the workspace, logs and outputs.
wit_bindgen::generate!({ path: "../../../../wit/v0.1.0", world: "action" });

use kiln::plugin::artifacts;
use kiln::plugin::host::{self, LogLevel};
use kiln::plugin::types::{Capability, FsAccess, InputSpec, OutputSpec};

struct Echo;

fn input<'a>(context: &'a Context, name: &str) -> Option<&'a str> {
    context.inputs.iter().find(|kv| kv.key == name).map(|kv| kv.value.as_str())
}

impl Guest for Echo {
    fn metadata() -> Metadata {
        Metadata {
            name: "echo".into(),
            version: "0.1.0".into(),
            description: "says what it is told".into(),
            inputs: vec![
                InputSpec {
                    name: "message".into(),
                    description: "what to say".into(),
                    required: true,
                    default: None,
                },
                InputSpec {
                    name: "greeting".into(),
                    description: "how to start".into(),
                    required: false,
                    default: Some("hello".into()),
                },
            ],
            outputs: vec![
                OutputSpec { name: "said".into(), description: "the sentence".into() },
                OutputSpec { name: "digest".into(), description: "an artifact's digest".into() },
            ],
            capabilities: vec![
                Capability::Fs(FsAccess::Write),
                Capability::Secret("TOKEN".into()),
                Capability::Env("SUFFIX".into()),
            ],
        }
    }

    fn run(context: Context) -> Result<Vec<KeyValue>, ActionError> {
        let message = input(&context, "message")
            .ok_or_else(|| ActionError::InvalidInput("`message` is missing".into()))?;
        if message == "fail" {
            return Err(ActionError::Failed("asked to fail".into()));
        }
        let greeting = input(&context, "greeting").unwrap_or("?");
        let suffix = std::env::var("SUFFIX").unwrap_or_default();
        let said = format!("{greeting}, {message}{suffix}");
        host::log(LogLevel::Info, &said);
        host::log(LogLevel::Warn, "careful");
        host::progress(150, "almost");
        if let Some(token) = host::secret("TOKEN") {
            host::log(LogLevel::Info, &format!("token is {token}"));
        }
        println!("stdout line from {} in {}", context.step, context.job);
        let workspace = context.workspace.clone().unwrap_or_default();
        std::fs::write(format!("{workspace}/echo.txt"), &said)
            .map_err(|e| ActionError::Failed(format!("cannot write echo.txt: {e}")))?;
        // `upload:NAME` stores echo.txt as artifact NAME; `download:NAME`
        // fetches NAME into got.txt. Either returns the digest.
        let store_error = |e: artifacts::ArtifactError| ActionError::Failed(format!("{e:?}"));
        if let Some(name) = message.strip_prefix("upload:") {
            let digest = artifacts::put(name, "echo.txt").map_err(store_error)?;
            return Ok(vec![KeyValue { key: "said".into(), value: said }, KeyValue { key: "digest".into(), value: digest }]);
        }
        if let Some(name) = message.strip_prefix("download:") {
            let digest = artifacts::get(name, "got.txt").map_err(store_error)?;
            return Ok(vec![KeyValue { key: "said".into(), value: said }, KeyValue { key: "digest".into(), value: digest }]);
        }
        Ok(vec![KeyValue { key: "said".into(), value: said }])
    }
}

export!(Echo);
