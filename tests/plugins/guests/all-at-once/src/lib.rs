//! A third-party deployment strategy, written against the WIT alone (no
//! kiln SDK): start every candidate instance, check them, switch all
//! traffic at once, promote. Rolls back if any instance is unhealthy.
//!
//! The memos `probe-world`, `probe-panic` and `probe-sleep` (which it never
//! writes itself) make it roll back with what it sees of clocks, randomness
//! and its params, panic, or sleep for an hour, for kiln-wasm's tests.
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
            "probe-world" => step(Decision::Rollback(probe_world(&state.params)), "done"),
            "probe-panic" => panic!("asked to panic by the memo"),
            "probe-sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                step(Decision::Done, "done")
            }
            _ => step(Decision::Done, "done"),
        })
    }
}

fn probe_world(params: &[kiln::plugin::types::KeyValue]) -> String {
    use std::hash::BuildHasher;
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let start = std::time::Instant::now();
    let spin: u64 = (0..100_000u64).fold(0, |a, i| a.wrapping_add(i * i));
    let moved = start.elapsed().as_nanos();
    // The hasher's keys come from WASI random.
    let hash = std::collections::hash_map::RandomState::new().hash_one(spin);
    let params: Vec<String> = params.iter().map(|p| format!("{}={}", p.key, p.value)).collect();
    format!(
        "wall {wall} s, monotonic moved {moved} ns, hash {hash:x}, params {}",
        params.join(" ")
    )
}

export!(AllAtOnce);
