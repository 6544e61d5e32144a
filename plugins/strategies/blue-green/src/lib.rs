//! `kiln/blue-green`: starts the full candidate set (green) beside stable
//! (blue), checks every green instance, switches all traffic 0 → 100 in one
//! `set-weight`, optionally waits for an approval gate (blue still runs, so
//! a rejection rolls back at once), then promotes.
//!
//! Memo: `scaled` → `check k` (→ `retry k+1`) → `switched` → `approval` →
//! `promoted`.

use kiln_sdk::{ApprovalAnswer, Decision, InputSpec, Metadata, NextStep, RolloutState, Strategy};
use rollout::{Verdict, bad_memo, judge, memo, ms, num};

/// The strategy.
pub struct BlueGreen;

impl Strategy for BlueGreen {
    fn metadata() -> Metadata {
        let [retries, interval] = rollout::health_inputs();
        Metadata::new(
            "blue-green",
            env!("CARGO_PKG_VERSION"),
            "Starts the full new set, checks it, switches all traffic at once, then promotes",
        )
        .input(retries)
        .input(interval)
        .input(InputSpec::optional(
            "approval",
            "name of an approval gate to pass after the switch, before promoting",
        ))
    }

    fn next(state: &RolloutState) -> Result<NextStep, String> {
        rollout::check_replicas(state)?;
        let gate: Option<String> = state
            .params
            .optional("approval")
            .map_err(|e| e.to_string())?;
        let words = memo(state);
        Ok(match words.as_slice() {
            [] => NextStep::new(
                Decision::Scale {
                    version: state.candidate.clone(),
                    replicas: state.replicas,
                },
                "scaled",
            ),
            ["scaled"] => NextStep::new(Decision::CheckHealth, "check 0"),
            ["retry", k] => {
                NextStep::new(Decision::CheckHealth, format!("check {}", num(state, k)?))
            }
            ["check", k] => {
                let k = num(state, k)?;
                match judge(state, state.replicas, k)? {
                    Verdict::Healthy => NextStep::new(Decision::SetWeight(100), "switched"),
                    Verdict::Retry(wait) => {
                        NextStep::new(Decision::Wait(ms(wait)), format!("retry {}", k + 1))
                    }
                    Verdict::Fail(reason) => {
                        NextStep::new(Decision::Rollback(reason), "rolled-back")
                    }
                }
            }
            ["switched"] => match gate {
                Some(g) => NextStep::new(Decision::AwaitApproval(g), "approval"),
                None => NextStep::new(Decision::Promote, "promoted"),
            },
            ["approval"] => {
                let Some(g) = gate else {
                    return Err(bad_memo(state));
                };
                match state.approval(&g) {
                    ApprovalAnswer::Approved => NextStep::new(Decision::Promote, "promoted"),
                    ApprovalAnswer::Rejected => NextStep::new(
                        Decision::Rollback(format!("approval `{g}` was rejected")),
                        "rolled-back",
                    ),
                    ApprovalAnswer::Pending => {
                        NextStep::new(Decision::AwaitApproval(g), "approval")
                    }
                }
            }
            ["promoted"] | ["rolled-back"] | ["done"] => NextStep::new(Decision::Done, "done"),
            _ => return Err(bad_memo(state)),
        })
    }
}

kiln_sdk::deploy_strategy!(BlueGreen);

#[cfg(test)]
mod tests {
    use super::*;
    use rollout::sim::{World, assert_invariants, simulate, start};

    fn state(replicas: u32, params: &[(&str, &str)]) -> RolloutState {
        start(Some("v1"), replicas, params, BlueGreen::metadata().inputs)
    }

    #[test]
    fn full_green_then_one_switch_then_promote() {
        let run = simulate(BlueGreen::next, state(3, &[]), &World::default());
        assert_invariants(&run);
        use Decision::*;
        assert_eq!(
            run.decisions,
            vec![
                Scale {
                    version: "v2".into(),
                    replicas: 3
                },
                CheckHealth,
                SetWeight(100),
                Promote,
                Done
            ]
        );
        // The only weight change is the atomic 0 → 100 switch.
        assert_eq!(run.states[2].candidate_weight, 0);
    }

    #[test]
    fn an_approval_gate_comes_after_the_switch() {
        let params = [("approval", "prod")];
        let run = simulate(BlueGreen::next, state(2, &params), &World::default());
        assert_invariants(&run);
        assert_eq!(run.decisions[3], Decision::AwaitApproval("prod".into()));
        assert_eq!(run.outcome(), Some(&Decision::Promote));

        let world = World {
            approval: ApprovalAnswer::Rejected,
            ..World::default()
        };
        let run = simulate(BlueGreen::next, state(2, &params), &world);
        assert_invariants(&run);
        assert_eq!(
            run.outcome(),
            Some(&Decision::Rollback("approval `prod` was rejected".into()))
        );

        // Pending: ask again, never promote.
        let mut s = state(2, &params);
        s.memo = "approval".into();
        s.approvals = vec![kiln_sdk::Approval {
            name: "prod".into(),
            answer: ApprovalAnswer::Pending,
        }];
        assert_eq!(
            BlueGreen::next(&s).unwrap(),
            NextStep::new(Decision::AwaitApproval("prod".into()), "approval")
        );
    }

    #[test]
    fn health_failures_roll_back_before_any_traffic_moves() {
        for retries in 1..=4u32 {
            for fail_until in 0..6u32 {
                let world = World {
                    healthy: Box::new(move |n| n >= fail_until),
                    ..World::default()
                };
                let r = retries.to_string();
                let run = simulate(BlueGreen::next, state(2, &[("health-retries", &r)]), &world);
                assert_invariants(&run);
                if fail_until < retries {
                    assert_eq!(run.outcome(), Some(&Decision::Promote));
                } else {
                    assert!(
                        !run.decisions
                            .iter()
                            .any(|d| matches!(d, Decision::SetWeight(_)))
                    );
                    assert_eq!(
                        run.outcome(),
                        Some(&Decision::Rollback(format!(
                            "0 of 2 instances of `v2` healthy after {retries} checks: GET /healthz on web-v2-1: 503"
                        )))
                    );
                }
            }
        }
    }

    #[test]
    fn a_memo_from_elsewhere_is_an_error() {
        let mut s = state(1, &[]);
        s.memo = "approval".into();
        assert_eq!(
            BlueGreen::next(&s),
            Err("unrecognised memo `approval`: it was not written by this strategy".into())
        );
    }
}
