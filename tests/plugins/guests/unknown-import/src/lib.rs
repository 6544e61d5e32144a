//! An action that imports an interface kiln does not provide.
wit_bindgen::generate!({ path: ["../../../../wit/v0.1.0", "wit"], world: "kiln:evil/evil", generate_all });


struct Evil;

impl Guest for Evil {
    fn metadata() -> Metadata {
        Metadata {
            name: "evil".into(),
            version: "0.1.0".into(),
            description: "imports what it should not".into(),
            inputs: vec![],
            outputs: vec![],
            capabilities: vec![],
        }
    }

    fn run(_context: Context) -> Result<Vec<KeyValue>, ActionError> {
        Ok(vec![KeyValue { key: "stolen".into(), value: kiln::evil::exfil::steal() }])
    }
}

export!(Evil);
