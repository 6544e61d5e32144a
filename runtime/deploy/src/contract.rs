//! The plugin contract's records, mirrored field for field from
//! `wit/v0.1.0/{types,health,strategy}.wit`, so the WASM host's adapter is a
//! straight conversion (WIT `kebab-case` ↔ Rust `snake_case`, `option` ↔
//! `Option`, `list` ↔ `Vec`, `variant` ↔ `enum`).
//!
//! They also serialise (JSON) into the rollout journal and the dry-run
//! scripts, so the names on disk are the WIT names.

use serde::{Deserialize, Serialize};

/// `types.duration-ms`.
pub type DurationMs = u64;

/// `types.key-value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// Name.
    pub key: String,
    /// Value.
    pub value: String,
}

/// `types.fs-access`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsAccess {
    /// Read-only workspace.
    Read,
    /// Read-write workspace.
    Write,
}

/// `types.capability`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// `permissions.fs`.
    Fs(FsAccess),
    /// `permissions.network`.
    Network(String),
    /// `permissions.env`.
    Env(String),
    /// `permissions.secrets`.
    Secret(String),
}

/// `types.input-spec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Name under `with:`.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Whether it must be given.
    pub required: bool,
    /// Used when not given.
    pub default: Option<String>,
}

/// `types.output-spec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputSpec {
    /// Name.
    pub name: String,
    /// What it holds.
    pub description: String,
}

/// `types.metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Short name.
    pub name: String,
    /// The plugin's own semver version.
    pub version: String,
    /// What it does.
    pub description: String,
    /// `with:` inputs.
    pub inputs: Vec<InputSpec>,
    /// Outputs.
    pub outputs: Vec<OutputSpec>,
    /// Capabilities it needs.
    pub capabilities: Vec<Capability>,
}

/// `health-types.target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// The version the instance runs.
    pub version: String,
    /// Instance name.
    pub instance: String,
}

/// `health-types.health-status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HealthStatus {
    /// Passed.
    Healthy,
    /// Failed.
    Unhealthy,
    /// The check could not decide.
    Unknown,
}

/// `health-types.metric`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Name, e.g. `latency-ms`.
    pub name: String,
    /// Value.
    pub value: f64,
}

/// `health-types.health-report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// Verdict.
    pub status: HealthStatus,
    /// One line for the log.
    pub detail: String,
    /// Measurements.
    pub metrics: Vec<Metric>,
}

/// `strategy-types.version-replicas`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionReplicas {
    /// Version.
    pub version: String,
    /// Running instances.
    pub replicas: u32,
    /// Of those, healthy.
    pub healthy: u32,
}

/// `strategy-types.traffic-stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficStats {
    /// Version.
    pub version: String,
    /// Requests answered since the last `set-weight`.
    pub requests: u64,
    /// 5xx responses and failed connections.
    pub errors: u64,
    /// Median latency (to response headers).
    pub p50_latency_ms: f64,
    /// 99th percentile latency.
    pub p99_latency_ms: f64,
}

/// `strategy-types.approval-answer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalAnswer {
    /// Not answered yet.
    Pending,
    /// `kiln approve`.
    Approved,
    /// `kiln reject` (or the approval timed out).
    Rejected,
}

/// `strategy-types.approval`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Gate name.
    pub name: String,
    /// Answer so far.
    pub answer: ApprovalAnswer,
}

/// `strategy-types.rollout-state`: everything the host observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutState {
    /// Service.
    pub service: String,
    /// The version serving now; `None` for a first deployment.
    pub stable: Option<String>,
    /// The version being rolled out.
    pub candidate: String,
    /// The service's replica count.
    pub replicas: u32,
    /// Instances per version.
    pub versions: Vec<VersionReplicas>,
    /// Percent of traffic sent to the candidate.
    pub candidate_weight: u8,
    /// Latest report per candidate instance, from the last `check-health`.
    pub health: Vec<HealthReport>,
    /// Traffic since the last `set-weight`.
    pub traffic: Vec<TrafficStats>,
    /// Approval gates asked so far.
    pub approvals: Vec<Approval>,
    /// Time since the previous decision was carried out.
    pub elapsed_ms: DurationMs,
    /// The strategy's `with:` parameters.
    pub params: Vec<KeyValue>,
    /// The memo of the previous decision (empty at first).
    pub memo: String,
}

/// `strategy-types.scale-to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleTo {
    /// Version.
    pub version: String,
    /// Instances wanted.
    pub replicas: u32,
}

/// `strategy-types.decision`: one effect for the host to perform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "decision", content = "value")]
pub enum Decision {
    /// Run `n` instances of a version.
    Scale(ScaleTo),
    /// Percent of traffic to the candidate, atomically.
    SetWeight(u8),
    /// Check every candidate instance.
    CheckHealth,
    /// Let time (and traffic) pass.
    Wait(DurationMs),
    /// Pause until `kiln approve`/`kiln reject` answers this gate.
    AwaitApproval(String),
    /// Make the candidate stable at full weight; remove the old version.
    Promote,
    /// Restore stable at full weight, then remove the candidate.
    Rollback(String),
    /// The rollout is over.
    Done,
}

/// `strategy-types.next-step`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextStep {
    /// What to do.
    pub decision: Decision,
    /// Handed back as `memo` on the next call.
    pub memo: String,
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Scale(s) => write!(f, "scale {} to {}", s.version, s.replicas),
            Self::SetWeight(w) => write!(f, "set-weight {w}%"),
            Self::CheckHealth => f.write_str("check-health"),
            Self::Wait(ms) => write!(f, "wait {ms}ms"),
            Self::AwaitApproval(gate) => write!(f, "await-approval `{gate}`"),
            Self::Promote => f.write_str("promote"),
            Self::Rollback(reason) => write!(f, "rollback: {reason}"),
            Self::Done => f.write_str("done"),
        }
    }
}
