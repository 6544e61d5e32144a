//! The `deploy-strategy` world: pure decisions over what the host observed.

use crate::{HealthReport, Inputs, Metadata};

/// A deployment strategy. Implement it and export it with
/// [`crate::deploy_strategy!`]. Keep it pure: everything it knows is in
/// `state` (its own progress in [`RolloutState::memo`]); the host stops its
/// clocks and fixes its randomness, so a rollout can be simulated exactly.
pub trait Strategy {
    /// What this strategy is and accepts.
    fn metadata() -> Metadata;

    /// The next effect. An `Err` is a bad parameter; the host rolls back
    /// with its message.
    fn next(state: &RolloutState) -> Result<NextStep, String>;
}

/// How many instances of a version run, and how many are healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionReplicas {
    /// The version.
    pub version: String,
    /// Instances running it.
    pub replicas: u32,
    /// Of those, how many passed their last health check.
    pub healthy: u32,
}

/// Traffic the proxy observed for one version since the last weight change.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficStats {
    /// The version.
    pub version: String,
    /// Requests served.
    pub requests: u64,
    /// 5xx responses and failed connections.
    pub errors: u64,
    /// Median latency.
    pub p50_latency_ms: f64,
    /// 99th percentile latency.
    pub p99_latency_ms: f64,
}

/// The answer to an approval gate so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalAnswer {
    /// Nobody answered yet.
    Pending,
    /// `kiln approve`.
    Approved,
    /// `kiln reject`.
    Rejected,
}

/// A named approval gate and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The gate's name.
    pub name: String,
    /// Its answer.
    pub answer: ApprovalAnswer,
}

/// Everything the host observed, handed to [`Strategy::next`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RolloutState {
    /// The service being deployed.
    pub service: String,
    /// The version serving now; `None` for a first deployment.
    pub stable: Option<String>,
    /// The version being rolled out.
    pub candidate: String,
    /// The service's replica count.
    pub replicas: u32,
    /// Instances per version.
    pub versions: Vec<VersionReplicas>,
    /// Percent of traffic sent to the candidate (0–100).
    pub candidate_weight: u8,
    /// The latest health report of each candidate instance.
    pub health: Vec<HealthReport>,
    /// Traffic per version since the last weight change.
    pub traffic: Vec<TrafficStats>,
    /// Approval gates and their answers.
    pub approvals: Vec<Approval>,
    /// Milliseconds since the previous decision was carried out.
    pub elapsed_ms: u64,
    /// The `with:` parameters, read through the declared inputs.
    pub params: Inputs,
    /// The memo returned with the previous decision (empty at first).
    pub memo: String,
}

impl RolloutState {
    /// Instances of `version` (0 if none run).
    pub fn replicas_of(&self, version: &str) -> &VersionReplicas {
        static NONE: VersionReplicas = VersionReplicas {
            version: String::new(),
            replicas: 0,
            healthy: 0,
        };
        self.versions
            .iter()
            .find(|v| v.version == version)
            .unwrap_or(&NONE)
    }

    /// The traffic of `version`, if the proxy saw any.
    pub fn traffic_of(&self, version: &str) -> Option<&TrafficStats> {
        self.traffic.iter().find(|t| t.version == version)
    }

    /// The answer of gate `name` (pending if the host has not listed it).
    pub fn approval(&self, name: &str) -> ApprovalAnswer {
        self.approvals
            .iter()
            .find(|a| a.name == name)
            .map_or(ApprovalAnswer::Pending, |a| a.answer)
    }
}

/// One effect for the host to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run `replicas` instances of `version`.
    Scale {
        /// The version.
        version: String,
        /// The instance count.
        replicas: u32,
    },
    /// Send this percent of traffic to the candidate, atomically.
    SetWeight(u8),
    /// Run the health check on every candidate instance.
    CheckHealth,
    /// Wait this many milliseconds.
    Wait(u64),
    /// Pause until the gate is answered.
    AwaitApproval(String),
    /// Make the candidate stable at full weight; remove the old version.
    Promote,
    /// Restore stable at full weight, then remove the candidate.
    Rollback(String),
    /// The rollout is over.
    Done,
}

/// A decision and the memo the host hands back on the next call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextStep {
    /// What to do.
    pub decision: Decision,
    /// Where the strategy is, for its next call.
    pub memo: String,
}

impl NextStep {
    /// `decision`, remembering `memo`.
    pub fn new(decision: Decision, memo: impl Into<String>) -> Self {
        Self {
            decision,
            memo: memo.into(),
        }
    }
}
