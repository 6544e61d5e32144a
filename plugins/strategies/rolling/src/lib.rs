//! `kiln/rolling`: adds candidate instances one at a time beside the full
//! stable set. Each new instance must pass its health check before the next
//! starts, and traffic follows the healthy share (`i/N`). Stable capacity
//! is never reduced before `promote`, which removes the old version.
//!
//! Memo: `scale i` → `check i k` (→ `retry i k+1` → `check i k+1`) →
//! `weight i` → … → `promoted`.

use kiln_sdk::{Decision, Metadata, NextStep, RolloutState, Strategy};
use rollout::{Verdict, bad_memo, judge, memo, ms, num};

/// The strategy.
pub struct Rolling;

impl Strategy for Rolling {
    fn metadata() -> Metadata {
        let [retries, interval] = rollout::health_inputs();
        Metadata::new(
            "rolling",
            env!("CARGO_PKG_VERSION"),
            "Adds candidate instances one at a time, each healthy before the next",
        )
        .input(retries)
        .input(interval)
    }

    fn next(state: &RolloutState) -> Result<NextStep, String> {
        rollout::check_replicas(state)?;
        let n = state.replicas;
        let scale = |i: u32| {
            NextStep::new(
                Decision::Scale {
                    version: state.candidate.clone(),
                    replicas: i,
                },
                format!("scale {i}"),
            )
        };
        Ok(match memo(state).as_slice() {
            [] => scale(1),
            ["scale", i] | ["retry", i, _] => {
                let attempt = match memo(state).as_slice() {
                    ["retry", _, k] => num(state, k)?,
                    _ => 0,
                };
                NextStep::new(
                    Decision::CheckHealth,
                    format!("check {} {attempt}", num(state, i)?),
                )
            }
            ["check", i, k] => {
                let (i, k) = (num(state, i)?, num(state, k)?);
                match judge(state, i, k)? {
                    Verdict::Healthy => {
                        let weight = (u64::from(i) * 100 / u64::from(n)) as u8;
                        NextStep::new(Decision::SetWeight(weight), format!("weight {i}"))
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
                let i = num(state, i)?;
                if i >= n {
                    NextStep::new(Decision::Promote, "promoted")
                } else {
                    scale(i + 1)
                }
            }
            ["promoted"] | ["rolled-back"] => NextStep::new(Decision::Done, "done"),
            ["done"] => NextStep::new(Decision::Done, "done"),
            _ => return Err(bad_memo(state)),
        })
    }
}

kiln_sdk::deploy_strategy!(Rolling);

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_sdk::ApprovalAnswer;
    use rollout::sim::{World, assert_invariants, simulate, start};

    fn state(replicas: u32, params: &[(&str, &str)]) -> RolloutState {
        start(Some("v1"), replicas, params, Rolling::metadata().inputs)
    }

    fn scale(n: u32) -> Decision {
        Decision::Scale {
            version: "v2".into(),
            replicas: n,
        }
    }

    #[test]
    fn three_replicas_go_one_at_a_time_then_promote() {
        let run = simulate(Rolling::next, state(3, &[]), &World::default());
        assert_invariants(&run);
        use Decision::*;
        assert_eq!(
            run.decisions,
            vec![
                scale(1),
                CheckHealth,
                SetWeight(33),
                scale(2),
                CheckHealth,
                SetWeight(66),
                scale(3),
                CheckHealth,
                SetWeight(100),
                Promote,
                Done,
            ]
        );
    }

    #[test]
    fn every_size_and_every_failure_point_keeps_the_invariants() {
        for replicas in 1..=6 {
            for fail_at in 0..(replicas * 3 + 1) {
                for retries in 1..=3 {
                    let r = retries.to_string();
                    let world = World {
                        healthy: Box::new(move |n| n < fail_at),
                        approval: ApprovalAnswer::Approved,
                        ..World::default()
                    };
                    let run = simulate(
                        Rolling::next,
                        state(replicas, &[("health-retries", &r)]),
                        &world,
                    );
                    assert_invariants(&run);
                    // Promotion only when every instance passed its check.
                    let checks_needed = replicas;
                    match run.outcome() {
                        Some(Decision::Promote) => assert!(fail_at >= checks_needed),
                        Some(Decision::Rollback(reason)) => {
                            assert!(
                                fail_at < checks_needed + (retries - 1) * replicas,
                                "{reason}"
                            );
                            assert!(
                                reason.contains("instances of `v2` healthy after"),
                                "{reason}"
                            );
                        }
                        other => panic!("no outcome: {other:?}"),
                    }
                    // Never more than one instance added per step.
                    let mut last = 0;
                    for d in &run.decisions {
                        if let Decision::Scale { replicas: n, .. } = d {
                            assert_eq!(*n, last + 1);
                            last = *n;
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_failing_instance_is_retried_then_rolled_back_with_the_reason() {
        let world = World {
            healthy: Box::new(|_| false),
            ..World::default()
        };
        let run = simulate(
            Rolling::next,
            state(2, &[("health-interval", "1s")]),
            &world,
        );
        assert_invariants(&run);
        use Decision::*;
        assert_eq!(
            run.decisions,
            vec![
                scale(1), CheckHealth, Wait(1000), CheckHealth, Wait(1000), CheckHealth,
                Rollback("0 of 1 instances of `v2` healthy after 3 checks: GET /healthz on web-v2-1: 503".into()),
                Done,
            ]
        );
    }

    #[test]
    fn a_first_deployment_has_no_stable_to_keep() {
        let run = simulate(
            Rolling::next,
            start(None, 2, &[], Rolling::metadata().inputs),
            &World::default(),
        );
        assert_invariants(&run);
        assert_eq!(run.outcome(), Some(&Decision::Promote));
    }

    #[test]
    fn bad_input_is_an_error_not_a_guess() {
        let mut s = state(2, &[]);
        s.memo = "dance 3".into();
        assert_eq!(
            Rolling::next(&s),
            Err("unrecognised memo `dance 3`: it was not written by this strategy".into())
        );
        assert_eq!(
            Rolling::next(&state(0, &[])),
            Err("service `web` has 0 replicas: nothing to roll out".into())
        );
        let mut s = state(2, &[("health-retries", "many")]);
        s.memo = "check 1 0".into();
        assert_eq!(
            Rolling::next(&s),
            Err(
                "input `health-retries` is `many`: expected a whole number from 0 to 4294967295"
                    .into()
            )
        );
    }
}
