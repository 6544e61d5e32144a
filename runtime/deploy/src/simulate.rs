//! Dry runs: a strategy against scripted observations, no processes, no
//! proxy, no clock. `kiln deploy simulate` prints the decision sequence;
//! the strategy tests use the same function.
//!
//! The simulated world carries out each decision the simplest way: scale
//! sets the version's count, a `check-health` takes the next scripted
//! status for every candidate instance (healthy when the script runs out),
//! a `wait` advances a virtual clock and shows the next scripted traffic
//! (none when the script runs out), `set-weight` resets traffic, and a gate
//! gets its scripted answer (approved when not scripted).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::contract::{
    Approval, ApprovalAnswer, Decision, HealthReport, HealthStatus, KeyValue, RolloutState,
    TrafficStats, VersionReplicas,
};
use crate::plugin::Strategy;

/// A dry-run script (JSON).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Script {
    /// Service name.
    #[serde(default = "default_service")]
    pub service: String,
    /// Serving version (`null` for a first deployment).
    pub stable: Option<String>,
    /// Version rolled out.
    pub candidate: String,
    /// Replica count.
    pub replicas: u32,
    /// The strategy's `with:`.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// One status per `check-health`, for every candidate instance.
    #[serde(default)]
    pub health: Vec<HealthStatus>,
    /// Candidate traffic seen after each `wait`.
    #[serde(default)]
    pub traffic: Vec<ScriptedTraffic>,
    /// Answers of approval gates by name.
    #[serde(default)]
    pub approvals: BTreeMap<String, ApprovalAnswer>,
    /// Most decisions before the simulation gives up.
    #[serde(default = "default_max")]
    pub max_decisions: usize,
}

/// Traffic of the candidate after one `wait`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ScriptedTraffic {
    /// Requests.
    pub requests: u64,
    /// Errors among them.
    #[serde(default)]
    pub errors: u64,
    /// p99 latency.
    #[serde(default)]
    pub p99_latency_ms: f64,
}

fn default_service() -> String {
    "web".into()
}

fn default_max() -> usize {
    1000
}

/// One simulated step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Simulated {
    /// Virtual time when it was decided (ms since the start).
    pub at_ms: u64,
    /// What the strategy decided.
    pub decision: Decision,
}

/// How a simulation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimulationEnd {
    /// `promote`.
    Promoted,
    /// `rollback(reason)`.
    RolledBack(String),
    /// `done` without promotion (the controller rolls that back).
    DoneWithoutPromotion,
    /// `next` returned an error.
    StrategyError(String),
    /// `max-decisions` reached.
    TooManyDecisions,
}

/// Runs `strategy` against `script`.
pub fn simulate(strategy: &mut dyn Strategy, script: &Script) -> (Vec<Simulated>, SimulationEnd) {
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    if let Some(stable) = &script.stable {
        counts.insert(stable.clone(), script.replicas);
    }
    let mut healthy = 0u32;
    let mut weight = 0u8;
    let mut health = Vec::new();
    let mut health_calls = script.health.iter();
    let mut traffic_calls = script.traffic.iter();
    let mut traffic: Option<ScriptedTraffic> = None;
    let mut approvals: Vec<Approval> = Vec::new();
    let mut memo = String::new();
    let mut clock = 0u64;
    let mut elapsed = 0u64;
    let mut steps = Vec::new();
    for _ in 0..script.max_decisions {
        let candidate_count = counts.get(&script.candidate).copied().unwrap_or(0);
        let state = RolloutState {
            service: script.service.clone(),
            stable: script.stable.clone(),
            candidate: script.candidate.clone(),
            replicas: script.replicas,
            versions: counts
                .iter()
                .map(|(v, n)| VersionReplicas {
                    version: v.clone(),
                    replicas: *n,
                    healthy: if *v == script.candidate {
                        healthy.min(*n)
                    } else {
                        *n
                    },
                })
                .collect(),
            candidate_weight: weight,
            health: health.clone(),
            traffic: traffic
                .iter()
                .map(|t| TrafficStats {
                    version: script.candidate.clone(),
                    requests: t.requests,
                    errors: t.errors,
                    p50_latency_ms: t.p99_latency_ms / 2.0,
                    p99_latency_ms: t.p99_latency_ms,
                })
                .collect(),
            approvals: approvals.clone(),
            elapsed_ms: elapsed,
            params: script
                .params
                .iter()
                .map(|(k, v)| KeyValue {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            memo: memo.clone(),
        };
        let step = match strategy.next(&state) {
            Ok(step) => step,
            Err(e) => return (steps, SimulationEnd::StrategyError(e)),
        };
        memo = step.memo;
        steps.push(Simulated {
            at_ms: clock,
            decision: step.decision.clone(),
        });
        elapsed = 0;
        match step.decision {
            Decision::Scale(to) => {
                counts.insert(to.version.clone(), to.replicas);
                if to.version == script.candidate && to.replicas < candidate_count {
                    healthy = healthy.min(to.replicas);
                }
            }
            Decision::SetWeight(w) => {
                weight = w;
                traffic = None;
            }
            Decision::CheckHealth => {
                let status = health_calls
                    .next()
                    .copied()
                    .unwrap_or(HealthStatus::Healthy);
                health = (0..candidate_count)
                    .map(|_| HealthReport {
                        status,
                        detail: "scripted".into(),
                        metrics: Vec::new(),
                    })
                    .collect();
                healthy = if status == HealthStatus::Healthy {
                    candidate_count
                } else {
                    0
                };
            }
            Decision::Wait(ms) => {
                clock += ms;
                elapsed = ms;
                if let Some(t) = traffic_calls.next() {
                    traffic = Some(t.clone());
                }
            }
            Decision::AwaitApproval(gate) => {
                let answer = script
                    .approvals
                    .get(&gate)
                    .copied()
                    .unwrap_or(ApprovalAnswer::Approved);
                approvals.retain(|a| a.name != gate);
                approvals.push(Approval { name: gate, answer });
            }
            Decision::Promote => return (steps, SimulationEnd::Promoted),
            Decision::Rollback(reason) => return (steps, SimulationEnd::RolledBack(reason)),
            Decision::Done => return (steps, SimulationEnd::DoneWithoutPromotion),
        }
    }
    (steps, SimulationEnd::TooManyDecisions)
}
