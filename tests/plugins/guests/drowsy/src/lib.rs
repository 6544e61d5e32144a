//! Sleeps in `metadata()`: a guest blocked in a host call (a WASI clock
//! sleep), which the epoch deadline never sees. Loading it must still end
//! at the metadata time limit.
wit_bindgen::generate!({ path: "../../../../wit/v0.1.0", world: "action" });

struct Drowsy;

impl Guest for Drowsy {
    fn metadata() -> Metadata {
        std::thread::sleep(std::time::Duration::from_secs(3600));
        Metadata {
            name: "drowsy".into(),
            version: "0.1.0".into(),
            description: "never wakes up in time".into(),
            inputs: vec![],
            outputs: vec![],
            capabilities: vec![],
        }
    }

    fn run(_context: Context) -> Result<Vec<KeyValue>, ActionError> {
        Ok(vec![])
    }
}

export!(Drowsy);
