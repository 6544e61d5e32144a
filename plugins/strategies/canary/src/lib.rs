//! `kiln/canary`: moves traffic to the candidate in steps (`weights`, e.g.
//! `10,50,100`). At each step it runs enough candidate instances for the
//! weight (`ceil(N × w / 100)`, at least 1) beside the full stable set,
//! checks them, sets the weight, then watches the candidate's traffic for
//! `interval`, looking every `poll`: an error rate above `max-error-rate`
//! or a p99 latency above `max-p99-latency` rolls back at the first look
//! that sees it (once `min-requests` were served), so a bad version serves
//! for at most about one `poll`. At the end of the interval the step is
//! judged in full (too little traffic fails it too). After the last step
//! it promotes.
//!
//! Memo: `scale i` → `check i k` (→ `retry i k+1`) → `weight i` →
//! `observe i waited-ms` (→ `observe i more`) → next step → … →
//! `promoted`.

use std::time::Duration;

use kiln_sdk::{Decision, InputSpec, Metadata, NextStep, RolloutState, Strategy};
use rollout::{Verdict, bad_memo, judge, memo, ms, num};

/// The strategy.
pub struct Canary;

/// The parameters, checked.
struct Plan {
    weights: Vec<u8>,
    interval: Duration,
    poll: Duration,
    max_error_rate: f64,
    max_p99: Option<Duration>,
    min_requests: u64,
}

fn plan(state: &RolloutState) -> Result<Plan, String> {
    let p = &state.params;
    let e = |e: kiln_sdk::InputError| e.to_string();
    let weights: Vec<u8> = p.get("weights").map_err(e)?;
    let ok = !weights.is_empty()
        && weights.iter().all(|w| (1..=100).contains(w))
        && weights.windows(2).all(|w| w[0] < w[1])
        && weights.last() == Some(&100);
    if !ok {
        return Err(format!(
            "input `weights` is `{}`: expected increasing percentages from 1 to 100, ending at 100 (e.g. `10,50,100`)",
            p.raw("weights").unwrap_or_default()
        ));
    }
    let max_error_rate: f64 = p.get("max-error-rate").map_err(e)?;
    if !(0.0..=100.0).contains(&max_error_rate) {
        return Err(format!(
            "input `max-error-rate` is `{max_error_rate}`: expected a percentage from 0 to 100"
        ));
    }
    Ok(Plan {
        weights,
        interval: p.get("interval").map_err(e)?,
        poll: p
            .get::<Duration>("poll")
            .map_err(e)?
            .max(Duration::from_millis(1)),
        max_error_rate,
        max_p99: p.optional("max-p99-latency").map_err(e)?,
        min_requests: p.get("min-requests").map_err(e)?,
    })
}

impl Strategy for Canary {
    fn metadata() -> Metadata {
        let [retries, interval] = rollout::health_inputs();
        Metadata::new(
            "canary",
            env!("CARGO_PKG_VERSION"),
            "Shifts traffic to the new version in steps, analysing errors and latency at each",
        )
        .input(InputSpec::with_default(
            "weights",
            "candidate traffic percentages, increasing, ending at 100",
            "10,50,100",
        ))
        .input(InputSpec::with_default(
            "interval",
            "how long each step observes traffic",
            "30s",
        ))
        .input(InputSpec::with_default(
            "poll",
            "how often traffic is analysed during a step",
            "1s",
        ))
        .input(InputSpec::with_default(
            "max-error-rate",
            "percent of candidate requests that may fail (5xx or refused)",
            "5",
        ))
        .input(InputSpec::optional(
            "max-p99-latency",
            "the candidate's p99 latency limit, e.g. `500ms`",
        ))
        .input(InputSpec::with_default(
            "min-requests",
            "requests the candidate must serve per step to be judged",
            "0",
        ))
        .input(retries)
        .input(interval)
    }

    fn next(state: &RolloutState) -> Result<NextStep, String> {
        rollout::check_replicas(state)?;
        let mut plan = plan(state)?;
        // A first deployment has no stable version to shift traffic from,
        // and nobody may be calling it yet: one step to full weight, judged
        // by health and errors, not by how much traffic it happened to get.
        if state.stable.is_none() {
            plan.weights = vec![100];
            plan.min_requests = 0;
        }
        let step = |i: usize| -> Result<usize, String> {
            if i < plan.weights.len() {
                Ok(i)
            } else {
                Err(bad_memo(state))
            }
        };
        let needed = |i: usize| {
            let w = u64::from(plan.weights[i]);
            (u64::from(state.replicas) * w).div_ceil(100).max(1) as u32
        };
        // Start step `i`: more candidate instances if the weight needs them.
        let begin = |i: usize| {
            let n = needed(i);
            if state.replicas_of(&state.candidate).replicas < n {
                NextStep::new(
                    Decision::Scale {
                        version: state.candidate.clone(),
                        replicas: n,
                    },
                    format!("scale {i}"),
                )
            } else {
                NextStep::new(Decision::CheckHealth, format!("check {i} 0"))
            }
        };
        Ok(match memo(state).as_slice() {
            [] => begin(0),
            ["scale", i] => NextStep::new(
                Decision::CheckHealth,
                format!("check {} 0", step(num(state, i)? as usize)?),
            ),
            ["retry", i, k] => {
                let i = step(num(state, i)? as usize)?;
                NextStep::new(
                    Decision::CheckHealth,
                    format!("check {i} {}", num(state, k)?),
                )
            }
            ["check", i, k] => {
                let (i, k) = (step(num(state, i)? as usize)?, num(state, k)?);
                match judge(state, needed(i), k)? {
                    Verdict::Healthy => {
                        NextStep::new(Decision::SetWeight(plan.weights[i]), format!("weight {i}"))
                    }
                    Verdict::Retry(wait) => {
                        NextStep::new(Decision::Wait(ms(wait)), format!("retry {i} {}", k + 1))
                    }
                    Verdict::Fail(reason) => {
                        NextStep::new(Decision::Rollback(reason), "rolled-back")
                    }
                }
            }
            ["weight", i] => {
                let i = step(num(state, i)? as usize)?;
                observe(&plan, i, 0)
            }
            ["observe", i, waited] => {
                let i = step(num(state, i)? as usize)?;
                let waited: u64 = waited.parse().map_err(|_| bad_memo(state))?;
                let weight = plan.weights[i];
                if waited < ms(plan.interval) {
                    match failing(state, &plan, weight) {
                        Some(reason) => NextStep::new(Decision::Rollback(reason), "rolled-back"),
                        None => observe(&plan, i, waited),
                    }
                } else if let Some(reason) = analyse(state, &plan, weight) {
                    NextStep::new(Decision::Rollback(reason), "rolled-back")
                } else if i + 1 == plan.weights.len() {
                    NextStep::new(Decision::Promote, "promoted")
                } else {
                    begin(i + 1)
                }
            }
            ["promoted"] | ["rolled-back"] | ["done"] => NextStep::new(Decision::Done, "done"),
            _ => return Err(bad_memo(state)),
        })
    }
}

kiln_sdk::deploy_strategy!(Canary);

/// The next look at step `i`'s traffic, `waited` ms into its interval.
fn observe(plan: &Plan, i: usize, waited: u64) -> NextStep {
    let wait = ms(plan.poll).min(ms(plan.interval).saturating_sub(waited));
    NextStep::new(
        Decision::Wait(wait),
        format!("observe {i} {}", waited.saturating_add(wait)),
    )
}

/// Why the candidate's traffic at `weight`, at the end of the step's
/// interval, fails the analysis, if it does.
fn analyse(state: &RolloutState, plan: &Plan, weight: u8) -> Option<String> {
    let c = &state.candidate;
    let requests = state.traffic_of(c).map_or(0, |t| t.requests);
    if requests < plan.min_requests {
        return Some(format!(
            "only {requests} requests reached `{c}` at weight {weight}%; min-requests is {}",
            plan.min_requests
        ));
    }
    failing(state, plan, weight)
}

/// Why the candidate's traffic so far at `weight` breaks a limit, if it
/// does and `min-requests` have been served (fewer prove nothing yet).
fn failing(state: &RolloutState, plan: &Plan, weight: u8) -> Option<String> {
    let c = &state.candidate;
    let (requests, errors, p99) = state
        .traffic_of(c)
        .map_or((0, 0, 0.0), |t| (t.requests, t.errors, t.p99_latency_ms));
    if requests < plan.min_requests {
        return None;
    }
    if requests > 0 {
        let rate = errors as f64 * 100.0 / requests as f64;
        if rate > plan.max_error_rate {
            return Some(format!(
                "error rate {rate:.1}% of `{c}` at weight {weight}% ({errors} of {requests} requests) is above max-error-rate {}%",
                plan.max_error_rate
            ));
        }
    }
    if let Some(max) = plan.max_p99 {
        let max_ms = max.as_secs_f64() * 1000.0;
        if requests > 0 && p99 > max_ms {
            return Some(format!(
                "p99 latency {p99:.0} ms of `{c}` at weight {weight}% is above max-p99-latency {max_ms:.0} ms"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use Decision::*;
    use kiln_sdk::TrafficStats;
    use rollout::sim::{World, assert_invariants, simulate, start};

    fn state(replicas: u32, params: &[(&str, &str)]) -> RolloutState {
        start(Some("v1"), replicas, params, Canary::metadata().inputs)
    }

    fn traffic(requests: u64, errors: u64, p99: f64) -> Option<TrafficStats> {
        Some(TrafficStats {
            version: "v2".into(),
            requests,
            errors,
            p50_latency_ms: p99 / 2.0,
            p99_latency_ms: p99,
        })
    }

    fn scale(n: u32) -> Decision {
        Scale {
            version: "v2".into(),
            replicas: n,
        }
    }

    #[test]
    fn default_weights_step_through_analysis_to_promotion() {
        let world = World {
            traffic: Box::new(|_| traffic(100, 1, 80.0)),
            ..World::default()
        };
        let params = [("interval", "30s"), ("poll", "30s")];
        let run = simulate(Canary::next, state(4, &params), &world);
        assert_invariants(&run);
        assert_eq!(
            run.decisions,
            vec![
                scale(1),
                CheckHealth,
                SetWeight(10),
                Wait(30_000),
                scale(2),
                CheckHealth,
                SetWeight(50),
                Wait(30_000),
                scale(4),
                CheckHealth,
                SetWeight(100),
                Wait(30_000),
                Promote,
                Done,
            ]
        );
    }

    #[test]
    fn errors_above_the_limit_roll_back_at_that_step() {
        let world = World {
            traffic: Box::new(|w| {
                if w >= 50 {
                    traffic(200, 30, 80.0)
                } else {
                    traffic(20, 0, 80.0)
                }
            }),
            ..World::default()
        };
        let run = simulate(Canary::next, state(2, &[("max-error-rate", "5")]), &world);
        assert_invariants(&run);
        assert_eq!(
            run.outcome(),
            Some(&Rollback(
                "error rate 15.0% of `v2` at weight 50% (30 of 200 requests) is above max-error-rate 5%".into()
            ))
        );
        assert!(!run.decisions.contains(&SetWeight(100)));
    }

    #[test]
    fn a_failing_candidate_is_rolled_back_at_the_first_poll_that_sees_it() {
        let world = World {
            traffic: Box::new(|_| traffic(40, 20, 80.0)),
            ..World::default()
        };
        let params = [
            ("interval", "60s"),
            ("poll", "200ms"),
            ("min-requests", "20"),
        ];
        let run = simulate(Canary::next, state(2, &params), &world);
        assert_invariants(&run);
        assert_eq!(
            run.decisions,
            vec![
                scale(1),
                CheckHealth,
                SetWeight(10),
                Wait(200),
                Rollback(
                    "error rate 50.0% of `v2` at weight 10% (20 of 40 requests) is above max-error-rate 5%"
                        .into()
                ),
                Done,
            ]
        );
        // Below min-requests a look proves nothing: it waits the interval out.
        let world = World {
            traffic: Box::new(|_| traffic(3, 3, 80.0)),
            ..World::default()
        };
        let params = [
            ("interval", "1s"),
            ("poll", "400ms"),
            ("min-requests", "20"),
        ];
        let run = simulate(Canary::next, state(2, &params), &world);
        assert_eq!(
            &run.decisions[3..6],
            &[Wait(400), Wait(400), Wait(200)],
            "{:?}",
            run.decisions
        );
        assert_eq!(
            run.outcome(),
            Some(&Rollback(
                "only 3 requests reached `v2` at weight 10%; min-requests is 20".into()
            ))
        );
    }

    #[test]
    fn slow_p99_rolls_back_and_the_limit_is_optional() {
        let world = World {
            traffic: Box::new(|_| traffic(50, 0, 900.0)),
            ..World::default()
        };
        let run = simulate(
            Canary::next,
            state(1, &[("max-p99-latency", "500ms")]),
            &world,
        );
        assert_invariants(&run);
        assert_eq!(
            run.outcome(),
            Some(&Rollback(
                "p99 latency 900 ms of `v2` at weight 10% is above max-p99-latency 500 ms".into()
            ))
        );
        let run = simulate(Canary::next, state(1, &[]), &world);
        assert_eq!(run.outcome(), Some(&Promote));
    }

    #[test]
    fn too_little_traffic_is_not_a_pass_when_required() {
        let world = World {
            traffic: Box::new(|_| traffic(3, 0, 1.0)),
            ..World::default()
        };
        let run = simulate(Canary::next, state(2, &[("min-requests", "10")]), &world);
        assert_eq!(
            run.outcome(),
            Some(&Rollback(
                "only 3 requests reached `v2` at weight 10%; min-requests is 10".into()
            ))
        );
    }

    #[test]
    fn a_first_deployment_goes_to_full_weight_without_needing_traffic() {
        let world = World {
            traffic: Box::new(|_| traffic(0, 0, 0.0)),
            ..World::default()
        };
        let first = start(
            None,
            2,
            &[("min-requests", "5"), ("interval", "1s"), ("poll", "1s")],
            Canary::metadata().inputs,
        );
        let run = simulate(Canary::next, first, &world);
        assert_invariants(&run);
        assert_eq!(
            run.decisions,
            vec![
                scale(2),
                CheckHealth,
                SetWeight(100),
                Wait(1_000),
                Promote,
                Done
            ]
        );
    }

    #[test]
    fn every_weight_plan_size_and_health_failure_keeps_the_invariants() {
        let plans = ["100", "10,100", "10,50,100", "1,2,3,99,100", "25,50,75,100"];
        for weights in plans {
            for replicas in 1..=5 {
                for fail_until in [0, 1, 2, 3, 10] {
                    let world = World {
                        healthy: Box::new(move |n| n >= fail_until),
                        traffic: Box::new(|_| traffic(100, 0, 10.0)),
                        ..World::default()
                    };
                    let run = simulate(
                        Canary::next,
                        state(replicas, &[("weights", weights)]),
                        &world,
                    );
                    assert_invariants(&run);
                    let set: Vec<u8> = run
                        .decisions
                        .iter()
                        .filter_map(|d| if let SetWeight(w) = d { Some(*w) } else { None })
                        .collect();
                    if fail_until < 3 {
                        assert_eq!(
                            run.outcome(),
                            Some(&Promote),
                            "{weights} {replicas} {fail_until}"
                        );
                        let expected: Vec<u8> =
                            weights.split(',').map(|w| w.parse().unwrap()).collect();
                        assert_eq!(set, expected);
                    } else {
                        assert!(matches!(run.outcome(), Some(Rollback(_))));
                        assert!(set.is_empty());
                    }
                    // Candidate instances only grow, and cover the weight.
                    for (s, d) in run.states.iter().zip(&run.decisions) {
                        if let SetWeight(w) = d {
                            let c = s.replicas_of("v2").replicas;
                            assert!(
                                c * 100 >= u32::from(*w) * replicas,
                                "{c} instances for {w}% of {replicas}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bad_parameters_name_the_input() {
        for (weights, _) in [("10,5,100", ()), ("10,50", ()), ("0,100", ()), ("", ())] {
            assert_eq!(
                Canary::next(&state(2, &[("weights", weights)])),
                Err(format!(
                    "input `weights` is `{weights}`: expected increasing percentages from 1 to 100, ending at 100 (e.g. `10,50,100`)"
                ))
            );
        }
        assert_eq!(
            Canary::next(&state(2, &[("weights", "10,x")])),
            Err("input `weights` is `10,x`: expected a comma-separated list of a whole number from 0 to 255".into())
        );
        assert_eq!(
            Canary::next(&state(2, &[("max-error-rate", "150")])),
            Err("input `max-error-rate` is `150`: expected a percentage from 0 to 100".into())
        );
        let mut s = state(2, &[]);
        s.memo = "observe 7 0".into();
        assert_eq!(
            Canary::next(&s),
            Err("unrecognised memo `observe 7 0`: it was not written by this strategy".into())
        );
    }
}
