//! A third-party deployment strategy, written against the WIT alone (no
//! kiln SDK): start every candidate instance, check them, switch all
//! traffic at once, promote. Rolls back if any instance is unhealthy.
wit_bindgen::generate!({ path: "../../../../wit/v0.1.0", world: "deploy-strategy" });

use kiln::plugin::health_types::HealthStatus;
use kiln::plugin::strategy_types::{Decision, ScaleTo};
use kiln::plugin::types::InputSpec;

struct AllAtOnce;

fn step(decision: Decision, memo: &str) -> NextStep {
    NextStep {
        decision,
        memo: memo.into(),
    }
}

impl Guest for AllAtOnce {
    fn metadata() -> Metadata {
        Metadata {
            name: "all-at-once".into(),
            version: "0.1.0".into(),
            description: "every instance, then all traffic".into(),
            inputs: vec![InputSpec {
                name: "label".into(),
                description: "a word for the log".into(),
                required: false,
                default: Some("switch".into()),
            }],
            outputs: vec![],
            capabilities: vec![],
        }
    }

    fn next(state: RolloutState) -> Result<NextStep, String> {
        Ok(match state.memo.as_str() {
            "" => step(
                Decision::Scale(ScaleTo {
                    version: state.candidate.clone(),
                    replicas: state.replicas,
                }),
                "scaled",
            ),
            "scaled" => step(Decision::CheckHealth, "checked"),
            "checked" => {
                let healthy = state
                    .health
                    .iter()
                    .filter(|h| h.status == HealthStatus::Healthy)
                    .count();
                if healthy as u32 == state.replicas {
                    step(Decision::SetWeight(100), "switched")
                } else {
                    let why = format!("{healthy} of {} instances healthy", state.replicas);
                    step(Decision::Rollback(why), "done")
                }
            }
            "switched" => step(Decision::Promote, "done"),
            _ => step(Decision::Done, "done"),
        })
    }
}

export!(AllAtOnce);
