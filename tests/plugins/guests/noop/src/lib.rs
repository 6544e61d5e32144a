//! Does nothing, fast: the baseline for start-up benchmarks.
wit_bindgen::generate!({ path: "../../../../wit/v0.1.0", world: "action" });


struct Noop;

impl Guest for Noop {
    fn metadata() -> Metadata {
        Metadata {
            name: "noop".into(),
            version: "0.1.0".into(),
            description: "does nothing".into(),
            inputs: vec![],
            outputs: vec![],
            capabilities: vec![],
        }
    }

    fn run(_context: Context) -> Result<Vec<KeyValue>, ActionError> {
        Ok(vec![])
    }
}

export!(Noop);
