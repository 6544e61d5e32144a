//! A health check that declares capabilities: the network, which the host
//! grants a health check (its target's address), then the workspace and a
//! secret, which it never does, so `kiln validate` must refuse it.
wit_bindgen::generate!({ path: "../../../../wit/v0.1.0", world: "health-check" });

use kiln::plugin::health_types::HealthStatus;
use kiln::plugin::types::{Capability, FsAccess};

struct NeedyHealth;

impl Guest for NeedyHealth {
    fn metadata() -> Metadata {
        Metadata {
            name: "needy-health".into(),
            version: "0.1.0".into(),
            description: "checks with a token from a file".into(),
            inputs: vec![],
            outputs: vec![],
            capabilities: vec![
                Capability::Network("the instance".into()),
                Capability::Fs(FsAccess::Read),
                Capability::Secret("HEALTH_TOKEN".into()),
            ],
        }
    }

    fn check(_target: Target, _params: Vec<KeyValue>) -> HealthReport {
        HealthReport { status: HealthStatus::Unknown, detail: "never called".into(), metrics: vec![] }
    }
}

export!(NeedyHealth);
