//! A health check, to be used (wrongly) as a step action.
wit_bindgen::generate!({ path: "../../../../wit/v0.1.0", world: "health-check" });

use kiln::plugin::health_types::HealthStatus;

struct Health;

impl Guest for Health {
    fn metadata() -> Metadata {
        Metadata {
            name: "always-healthy".into(),
            version: "0.1.0".into(),
            description: "says healthy".into(),
            inputs: vec![],
            outputs: vec![],
            capabilities: vec![],
        }
    }

    fn check(_target: Target, _params: Vec<KeyValue>) -> HealthReport {
        HealthReport { status: HealthStatus::Healthy, detail: "ok".into(), metrics: vec![] }
    }
}

export!(Health);
