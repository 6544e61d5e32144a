//! A health check that always says healthy, and says what it checked
//! through `host.log` and stderr; also used (wrongly) as a step action.
wit_bindgen::generate!({ path: "../../../../wit/v0.1.0", world: "health-check" });

use kiln::plugin::health_types::HealthStatus;
use kiln::plugin::host::{self, LogLevel};

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

    fn check(target: Target, _params: Vec<KeyValue>) -> HealthReport {
        host::log(LogLevel::Info, &format!("looked at {}", target.instance));
        eprintln!("port {}", target.port);
        HealthReport { status: HealthStatus::Healthy, detail: "ok".into(), metrics: vec![] }
    }
}

export!(Health);
