//! Metadata past the host's limits: more inputs than a plugin may declare.
//! Loading it must fail with the limit, never allocate without bound.
wit_bindgen::generate!({ path: "../../../../wit/v0.1.0", world: "action" });

use kiln::plugin::types::InputSpec;

struct Bloated;

impl Guest for Bloated {
    fn metadata() -> Metadata {
        Metadata {
            name: "bloated".into(),
            version: "0.1.0".into(),
            description: "declares too many inputs".into(),
            inputs: (0..300)
                .map(|i| InputSpec {
                    name: format!("input-{i}"),
                    description: String::new(),
                    required: false,
                    default: None,
                })
                .collect(),
            outputs: vec![],
            capabilities: vec![],
        }
    }

    fn run(_context: Context) -> Result<Vec<KeyValue>, ActionError> {
        Ok(vec![])
    }
}

export!(Bloated);
