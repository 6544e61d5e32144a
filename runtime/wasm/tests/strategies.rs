//! The bundled strategies (`plugins/strategies`), loaded and called
//! through the host exactly as the deploy controller calls them. A small
//! simulated platform carries out each decision: it scales, moves the
//! weight, reports health and traffic for the scenario, and answers gates.

use kiln_wasm::strategy::{
    Approval, ApprovalAnswer, Decision, HealthReport, HealthStatus, KeyValue, RolloutState,
    TrafficStats, VersionReplicas,
};
use kiln_wasm::{Limits, Plugin, Runtime, World};

/// What the simulated candidate does.
#[derive(Clone, Copy)]
enum Candidate {
    Good,
    /// Half of its requests fail.
    Erroring,
    /// Its health endpoint fails.
    Unhealthy,
}

struct Outcome {
    decisions: Vec<String>,
    end: String,
}

async fn load(runtime: &Runtime, name: &str) -> std::sync::Arc<Plugin> {
    let bundled = kiln_bundled::find(name, 1).expect("bundled");
    let bytes = bundled.bytes;
    let plugin = runtime
        .load(&format!("kiln/{name}@1"), bytes, &kiln_wasm::sha256(bytes))
        .await
        .expect("loads");
    assert_eq!(plugin.world, World::DeployStrategy);
    plugin
}

/// The third-party strategy of the test guests, whose memos `probe-world`
/// and `probe-panic` report what it sees or make it panic.
async fn all_at_once(runtime: &Runtime) -> std::sync::Arc<Plugin> {
    let bytes = std::fs::read(kiln_test_plugins::ALL_AT_ONCE).expect("built");
    runtime
        .load("./all-at-once.wasm", &bytes, &kiln_wasm::sha256(&bytes))
        .await
        .expect("loads")
}

/// A one-replica rollout of v2 over v1 with `params` and `memo`, nothing
/// observed yet.
fn one_replica(params: Vec<KeyValue>, memo: &str) -> RolloutState {
    RolloutState {
        service: "web".into(),
        stable: Some("v1".into()),
        candidate: "v2".into(),
        replicas: 1,
        versions: Vec::new(),
        candidate_weight: 0,
        health: Vec::new(),
        traffic: Vec::new(),
        approvals: Vec::new(),
        elapsed_ms: 0,
        params,
        memo: memo.into(),
    }
}

/// Params: the metadata's defaults, then `overrides`.
fn params(plugin: &Plugin, overrides: &[(&str, &str)]) -> Vec<KeyValue> {
    let mut params: Vec<KeyValue> = plugin
        .metadata
        .inputs
        .iter()
        .filter_map(|i| {
            i.default.clone().map(|value| KeyValue {
                key: i.name.clone(),
                value,
            })
        })
        .collect();
    for (key, value) in overrides {
        params.retain(|kv| kv.key != *key);
        params.push(KeyValue {
            key: (*key).into(),
            value: (*value).into(),
        });
    }
    params
}

async fn roll_out(name: &str, overrides: &[(&str, &str)], candidate: Candidate) -> Outcome {
    let runtime = Runtime::new(None, Limits::default()).expect("runtime");
    let plugin = load(&runtime, name).await;
    let mut state = RolloutState {
        service: "web".into(),
        stable: Some("v1".into()),
        candidate: "v2".into(),
        replicas: 3,
        versions: vec![VersionReplicas {
            version: "v1".into(),
            replicas: 3,
            healthy: 3,
        }],
        candidate_weight: 0,
        health: Vec::new(),
        traffic: Vec::new(),
        approvals: Vec::new(),
        elapsed_ms: 0,
        params: params(&plugin, overrides),
        memo: String::new(),
    };
    let mut decisions = Vec::new();
    for _ in 0..200 {
        let next = plugin
            .next(&runtime, &state)
            .await
            .expect("no trap")
            .expect("parameters accepted");
        state.memo = next.memo;
        state.elapsed_ms = 0;
        match next.decision {
            Decision::Scale(to) => {
                decisions.push(format!("scale {} {}", to.version, to.replicas));
                let healthy = match (candidate, to.version == "v2") {
                    (Candidate::Unhealthy, true) => 0,
                    _ => to.replicas,
                };
                state.versions.retain(|v| v.version != to.version);
                if to.replicas > 0 {
                    state.versions.push(VersionReplicas {
                        version: to.version,
                        replicas: to.replicas,
                        healthy,
                    });
                }
            }
            Decision::SetWeight(weight) => {
                decisions.push(format!("weight {weight}"));
                state.candidate_weight = weight;
                state.traffic.clear();
            }
            Decision::CheckHealth => {
                decisions.push("check".into());
                let replicas = state
                    .versions
                    .iter()
                    .find(|v| v.version == "v2")
                    .map_or(0, |v| v.replicas);
                let status = match candidate {
                    Candidate::Unhealthy => HealthStatus::Unhealthy,
                    _ => HealthStatus::Healthy,
                };
                state.health = (0..replicas)
                    .map(|_| HealthReport {
                        status,
                        detail: String::new(),
                        metrics: Vec::new(),
                    })
                    .collect();
            }
            Decision::Wait(ms) => {
                decisions.push("wait".into());
                state.elapsed_ms = ms;
                let served = u64::from(state.candidate_weight) * 10;
                let errors = match candidate {
                    Candidate::Erroring => served / 2,
                    _ => 0,
                };
                state.traffic = vec![TrafficStats {
                    version: "v2".into(),
                    requests: served,
                    errors,
                    p50_latency_ms: 1.0,
                    p99_latency_ms: 2.0,
                }];
            }
            Decision::AwaitApproval(gate) => {
                decisions.push(format!("approval {gate}"));
                state.approvals.push(Approval {
                    name: gate,
                    answer: ApprovalAnswer::Approved,
                });
            }
            Decision::Promote => {
                return Outcome {
                    decisions,
                    end: "promote".into(),
                };
            }
            Decision::Rollback(why) => {
                return Outcome {
                    decisions,
                    end: format!("rollback: {why}"),
                };
            }
            Decision::Done => {
                return Outcome {
                    decisions,
                    end: "done".into(),
                };
            }
        }
    }
    panic!("{name} made 200 decisions without finishing: {decisions:?}");
}

#[tokio::test]
async fn canary_walks_its_weights_to_a_promotion_through_the_host() {
    let out = roll_out(
        "canary",
        &[("weights", "10,50,100"), ("max-error-rate", "5")],
        Candidate::Good,
    )
    .await;
    assert_eq!(out.end, "promote", "{:?}", out.decisions);
    let weights: Vec<&String> = out
        .decisions
        .iter()
        .filter(|d| d.starts_with("weight"))
        .collect();
    assert_eq!(weights, ["weight 10", "weight 50", "weight 100"]);
}

#[tokio::test]
async fn canary_rolls_back_on_errors_through_the_host() {
    let out = roll_out(
        "canary",
        &[("weights", "10,50,100"), ("max-error-rate", "5")],
        Candidate::Erroring,
    )
    .await;
    assert!(
        out.end.starts_with("rollback: "),
        "{}: {:?}",
        out.end,
        out.decisions
    );
    assert!(
        !out.decisions.contains(&"weight 50".to_owned()),
        "{:?}",
        out.decisions
    );
}

#[tokio::test]
async fn rolling_and_blue_green_promote_a_good_version_and_roll_back_an_unhealthy_one() {
    for name in ["rolling", "blue-green"] {
        let good = roll_out(name, &[], Candidate::Good).await;
        assert_eq!(good.end, "promote", "{name}: {:?}", good.decisions);
        let bad = roll_out(name, &[], Candidate::Unhealthy).await;
        assert!(
            bad.end.starts_with("rollback: "),
            "{name}: {}: {:?}",
            bad.end,
            bad.decisions
        );
        assert!(
            !bad.decisions.iter().any(|d| d == "weight 100"),
            "{name} sent all traffic to an unhealthy candidate: {:?}",
            bad.decisions
        );
    }
}

#[tokio::test]
async fn a_bad_parameter_is_the_strategys_error_not_a_trap() {
    let runtime = Runtime::new(None, Limits::default()).expect("runtime");
    let plugin = load(&runtime, "canary").await;
    let state = one_replica(params(&plugin, &[("weights", "50,10")]), "");
    let refused = plugin.next(&runtime, &state).await.expect("no trap");
    assert_eq!(
        refused.expect_err("refused"),
        "input `weights` is `50,10`: expected increasing percentages from 1 to 100, ending at 100 (e.g. `10,50,100`)"
    );
}

#[tokio::test]
async fn a_strategy_sees_no_clock_move_no_entropy_and_its_defaults() {
    // Its decision may depend only on the state it is given, or a dry run
    // would not rehearse the real rollout; params left out get the
    // declared defaults, as a `uses:` step's inputs do.
    let runtime = Runtime::new(None, Limits::default()).expect("runtime");
    let plugin = all_at_once(&runtime).await;
    let state = one_replica(Vec::new(), "probe-world");
    let mut seen = Vec::new();
    for _ in 0..2 {
        let next = plugin.next(&runtime, &state).await.expect("no trap");
        let Decision::Rollback(world) = next.expect("decides").decision else {
            panic!("the probe answers with a rollback");
        };
        seen.push(world);
    }
    assert!(
        seen[0].starts_with("wall 0 s, monotonic moved 0 ns, hash "),
        "{}",
        seen[0]
    );
    assert!(seen[0].ends_with(", params label=switch"), "{}", seen[0]);
    assert_eq!(seen[0], seen[1], "the same world on every call");
}

#[tokio::test]
async fn a_strategy_that_panics_is_a_trap_that_says_what_it_wrote() {
    let runtime = Runtime::new(None, Limits::default()).expect("runtime");
    let plugin = all_at_once(&runtime).await;
    let state = one_replica(Vec::new(), "probe-panic");
    let err = plugin.next(&runtime, &state).await.expect_err("a trap");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "plugin `./all-at-once.wasm` failed while deciding the next step: the plugin panicked"
        ) && text.contains("; it wrote: ")
            && text.contains("asked to panic by the memo"),
        "{text}"
    );
}
