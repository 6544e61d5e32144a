//! The stand-in strategies through the dry-run simulator (the mechanism
//! `kiln deploy simulate` uses).

use crate::contract::Decision;
use crate::simulate::{Script, SimulationEnd, simulate};
use crate::testing::strategy;

fn run(uses: &str, json: &str) -> (Vec<String>, SimulationEnd) {
    let script: Script = serde_json::from_str(json).expect("script");
    let mut s = strategy(uses).expect("known strategy");
    let (steps, end) = simulate(s.as_mut(), &script);
    (steps.iter().map(|s| s.decision.to_string()).collect(), end)
}

#[test]
fn rolling_replaces_one_instance_at_a_time() {
    let (steps, end) = run(
        "kiln/rolling@1",
        r#"{"stable": "v1", "candidate": "v2", "replicas": 3}"#,
    );
    assert_eq!(
        steps,
        [
            "scale v2 to 1",
            "check-health",
            "set-weight 33%",
            "scale v1 to 2",
            "scale v2 to 2",
            "check-health",
            "set-weight 66%",
            "scale v1 to 1",
            "scale v2 to 3",
            "check-health",
            "set-weight 100%",
            "scale v1 to 0",
            "promote",
        ]
    );
    assert_eq!(end, SimulationEnd::Promoted);
}

#[test]
fn rolling_stops_at_the_first_unhealthy_instance() {
    let (steps, end) = run(
        "kiln/rolling@1",
        r#"{"stable": "v1", "candidate": "v4", "replicas": 3, "health": ["unhealthy"]}"#,
    );
    assert_eq!(steps[..2], ["scale v4 to 1", "check-health"]);
    assert_eq!(
        end,
        SimulationEnd::RolledBack("a `v4` instance is not healthy: scripted".into())
    );
}

#[test]
fn blue_green_switches_everything_at_once() {
    let (steps, end) = run(
        "kiln/blue-green@1",
        r#"{"stable": "v1", "candidate": "v2", "replicas": 2, "params": {"observe": "1s"}}"#,
    );
    assert_eq!(
        steps,
        [
            "scale v2 to 2",
            "check-health",
            "set-weight 100%",
            "wait 1000ms",
            "promote"
        ]
    );
    assert_eq!(end, SimulationEnd::Promoted);
}

#[test]
fn blue_green_gate_rejected_rolls_back() {
    let (steps, end) = run(
        "kiln/blue-green@1",
        r#"{"stable": "v1", "candidate": "v2", "replicas": 1, "params": {"approval": "qa"}, "approvals": {"qa": "rejected"}}"#,
    );
    assert_eq!(steps[2], "await-approval `qa`");
    assert_eq!(
        end,
        SimulationEnd::RolledBack("approval `qa` was rejected".into())
    );
}

#[test]
fn canary_walks_its_weights_and_promotes() {
    let (steps, end) = run(
        "kiln/canary@1",
        r#"{"stable": "v1", "candidate": "v2", "replicas": 1,
            "params": {"weights": "10,100", "interval": "400ms", "poll": "200ms"}}"#,
    );
    assert_eq!(
        steps,
        [
            "scale v2 to 1",
            "check-health",
            "set-weight 10%",
            "wait 200ms",
            "wait 200ms",
            "set-weight 100%",
            "wait 200ms",
            "wait 200ms",
            "promote",
        ]
    );
    assert_eq!(end, SimulationEnd::Promoted);
}

#[test]
fn canary_rolls_back_when_the_error_rate_crosses_the_threshold() {
    let (steps, end) = run(
        "kiln/canary@1",
        r#"{"stable": "v1", "candidate": "v3", "replicas": 1,
            "params": {"interval": "10s", "max-error-rate": "0.1"},
            "traffic": [{"requests": 5, "errors": 5}, {"requests": 40, "errors": 2}, {"requests": 50, "errors": 30}]}"#,
    );
    // Below min-requests (20) nothing is judged; 5 % passes; 60 % fails.
    assert_eq!(steps.iter().filter(|s| s.starts_with("wait")).count(), 3);
    assert_eq!(
        end,
        SimulationEnd::RolledBack(
            "error rate 60.0% at weight 10% is above 10.0% (30 of 50 requests)".into()
        )
    );
}

#[test]
fn canary_latency_threshold() {
    let (_, end) = run(
        "kiln/canary@1",
        r#"{"stable": "v1", "candidate": "v2", "replicas": 1, "params": {"max-p99-latency": "50"},
            "traffic": [{"requests": 100, "p99-latency-ms": 80.0}]}"#,
    );
    assert_eq!(
        end,
        SimulationEnd::RolledBack("p99 latency 80 ms at weight 10% is above 50 ms".into())
    );
}

#[test]
fn bad_parameters_are_strategy_errors() {
    let (_, end) = run(
        "kiln/canary@1",
        r#"{"stable": "v1", "candidate": "v2", "replicas": 1, "params": {"weights": "10,fifty"}}"#,
    );
    assert_eq!(
        end,
        SimulationEnd::StrategyError("`weights` must be percentages like `10,50,100`".into())
    );
    let (_, end) = run(
        "kiln/canary@1",
        r#"{"stable": "v1", "candidate": "v2", "replicas": 1, "params": {"interval": "soon"}}"#,
    );
    assert_eq!(
        end,
        SimulationEnd::StrategyError("`soon` is not a duration (e.g. `30s`, `500ms`)".into())
    );
}

#[test]
fn first_deployment_has_no_stable_to_retire() {
    let (steps, end) = run(
        "kiln/rolling@1",
        r#"{"stable": null, "candidate": "v1", "replicas": 2}"#,
    );
    assert!(!steps.iter().any(|s| s.contains("v0")), "{steps:?}");
    assert_eq!(steps.last().map(String::as_str), Some("promote"));
    assert_eq!(end, SimulationEnd::Promoted);
    let _ = Decision::Done;
}
