//! A simulated host for the strategies' tests: it carries out each decision
//! on a [`RolloutState`] the way the deploy controller will, answers health
//! checks and approvals from a script, and records what happened, so tests
//! can assert invariants over whole rollouts.

use kiln_sdk::{
    Approval, ApprovalAnswer, Decision, HealthReport, HealthStatus, InputSpec, Inputs, NextStep,
    RolloutState, TrafficStats, VersionReplicas,
};

/// How the simulated world answers.
pub struct World {
    /// Health of candidate instances on check `n` (0-based, over the rollout).
    pub healthy: Box<dyn Fn(u32) -> bool>,
    /// Traffic stats of the candidate at weight `w`.
    pub traffic: Box<dyn Fn(u8) -> Option<TrafficStats>>,
    /// The answer to every approval gate.
    pub approval: ApprovalAnswer,
}

impl Default for World {
    fn default() -> Self {
        Self {
            healthy: Box::new(|_| true),
            traffic: Box::new(|_| None),
            approval: ApprovalAnswer::Approved,
        }
    }
}

/// What a simulated rollout did.
#[derive(Debug)]
pub struct Run {
    /// Every decision, in order.
    pub decisions: Vec<Decision>,
    /// The state before each decision was carried out (index-aligned).
    pub states: Vec<RolloutState>,
    /// The error, if `next` failed.
    pub error: Option<String>,
}

impl Run {
    /// The final decision before `done` (promote or rollback), if any.
    pub fn outcome(&self) -> Option<&Decision> {
        self.decisions
            .iter()
            .rev()
            .find(|d| matches!(d, Decision::Promote | Decision::Rollback(_)))
    }
}

/// A state for a service with `replicas` instances of `stable` (or none).
pub fn start(
    stable: Option<&str>,
    replicas: u32,
    params: &[(&str, &str)],
    specs: Vec<InputSpec>,
) -> RolloutState {
    RolloutState {
        service: "web".into(),
        stable: stable.map(Into::into),
        candidate: "v2".into(),
        replicas,
        versions: stable
            .map(|s| VersionReplicas {
                version: s.into(),
                replicas,
                healthy: replicas,
            })
            .into_iter()
            .collect(),
        candidate_weight: if stable.is_some() { 0 } else { 100 },
        params: Inputs::new(
            params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            specs,
        ),
        ..RolloutState::default()
    }
}

/// Drives `next` from `state` until `done`, an error, or 200 decisions
/// (a test failure: a strategy must finish).
pub fn simulate(
    next: impl Fn(&RolloutState) -> Result<NextStep, String>,
    mut state: RolloutState,
    world: &World,
) -> Run {
    let mut run = Run {
        decisions: Vec::new(),
        states: Vec::new(),
        error: None,
    };
    let mut checks = 0;
    for _ in 0..200 {
        let step = match next(&state) {
            Ok(s) => s,
            Err(e) => {
                run.error = Some(e);
                return run;
            }
        };
        run.states.push(state.clone());
        run.decisions.push(step.decision.clone());
        state.memo = step.memo;
        state.elapsed_ms = 0;
        match step.decision {
            Decision::Scale { version, replicas } => {
                state.versions.retain(|v| v.version != version);
                if replicas > 0 {
                    state.versions.push(VersionReplicas {
                        version,
                        replicas,
                        healthy: 0,
                    });
                }
                state.health.clear();
            }
            Decision::SetWeight(w) => {
                state.candidate_weight = w;
                state.traffic = (world.traffic)(w).into_iter().collect();
            }
            Decision::CheckHealth => {
                let n = state.replicas_of(&state.candidate.clone()).replicas;
                let ok = (world.healthy)(checks);
                checks += 1;
                let status = if ok {
                    HealthStatus::Healthy
                } else {
                    HealthStatus::Unhealthy
                };
                state.health = (0..n)
                    .map(|i| {
                        HealthReport::new(
                            status,
                            format!(
                                "GET /healthz on web-v2-{}: {}",
                                i + 1,
                                if ok { 200 } else { 503 }
                            ),
                        )
                    })
                    .collect();
                let candidate = state.candidate.clone();
                if let Some(v) = state.versions.iter_mut().find(|v| v.version == candidate) {
                    v.healthy = if ok { v.replicas } else { 0 };
                }
            }
            Decision::Wait(ms) => state.elapsed_ms = ms,
            Decision::AwaitApproval(name) => {
                state.approvals.retain(|a| a.name != name);
                state.approvals.push(Approval {
                    name,
                    answer: world.approval,
                });
            }
            Decision::Promote => {
                let candidate = state.candidate.clone();
                state.versions.retain(|v| v.version == candidate);
                state.stable = Some(candidate);
                state.candidate_weight = 100;
            }
            Decision::Rollback(_) => {
                let candidate = state.candidate.clone();
                state.versions.retain(|v| v.version != candidate);
                state.candidate_weight = 0;
            }
            Decision::Done => return run,
        }
    }
    panic!(
        "the strategy did not finish within 200 decisions: {:?}",
        run.decisions
    );
}

/// Asserts what every strategy promises: the stable version keeps its full
/// replica count until promotion, traffic never goes to the candidate
/// before its instances were checked healthy, and the rollout ends.
pub fn assert_invariants(run: &Run) {
    assert!(run.error.is_none(), "strategy failed: {:?}", run.error);
    assert_eq!(
        run.decisions.last(),
        Some(&Decision::Done),
        "{:?}",
        run.decisions
    );
    let mut promoted = false;
    for (state, decision) in run.states.iter().zip(&run.decisions) {
        if let (Some(stable), false) = (&state.stable, promoted) {
            assert_eq!(
                state.replicas_of(stable).replicas,
                state.replicas,
                "stable capacity fell before promotion: {:?}",
                run.decisions
            );
            if let Decision::Scale { version, .. } = decision {
                assert_ne!(
                    version, stable,
                    "a strategy never scales the stable version"
                );
            }
        }
        if let Decision::SetWeight(w) = decision {
            let c = state.replicas_of(&state.candidate);
            assert!(*w <= 100);
            assert!(
                c.replicas > 0 && c.healthy == c.replicas,
                "weight {w} set before the candidate was healthy: {:?}",
                run.decisions
            );
        }
        if matches!(decision, Decision::Promote) {
            promoted = true;
        }
    }
}
