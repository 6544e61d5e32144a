//! What kiln's strategies share. A strategy keeps no state: where it is in
//! the rollout travels in the memo, written here as words (`check 2 0`), so
//! a rollout log reads plainly and a bad memo is a clear error.

use std::time::Duration;

use kiln_sdk::{HealthStatus, InputSpec, RolloutState};

pub mod sim;

/// The memo split into words; `[]` on the first call.
pub fn memo(state: &RolloutState) -> Vec<&str> {
    state.memo.split_whitespace().collect()
}

/// The error for a memo the strategy did not write.
pub fn bad_memo(state: &RolloutState) -> String {
    format!(
        "unrecognised memo `{}`: it was not written by this strategy",
        state.memo
    )
}

/// `word` as a number, or the bad-memo error.
pub fn num(state: &RolloutState, word: &str) -> Result<u32, String> {
    word.parse().map_err(|_| bad_memo(state))
}

/// The inputs for health retries every strategy accepts.
pub fn health_inputs() -> [InputSpec; 2] {
    [
        InputSpec::with_default(
            "health-retries",
            "health checks per step before rolling back",
            "3",
        ),
        InputSpec::with_default("health-interval", "wait between health checks", "2s"),
    ]
}

/// How the last `check-health` went for `expected` candidate instances.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every expected instance reported healthy.
    Healthy,
    /// Not yet: wait `health-interval`, then check again.
    Retry(Duration),
    /// Out of retries: roll back with this reason.
    Fail(String),
}

/// Judges the health reports after check number `attempt` (0-based).
pub fn judge(state: &RolloutState, expected: u32, attempt: u32) -> Result<Verdict, String> {
    let retries: u32 = state
        .params
        .get("health-retries")
        .map_err(|e| e.to_string())?;
    let interval: Duration = state
        .params
        .get("health-interval")
        .map_err(|e| e.to_string())?;
    let retries = retries.max(1);
    let healthy = state
        .health
        .iter()
        .filter(|r| r.status == HealthStatus::Healthy)
        .count() as u32;
    if healthy >= expected {
        return Ok(Verdict::Healthy);
    }
    if attempt + 1 < retries {
        return Ok(Verdict::Retry(interval));
    }
    let detail = state
        .health
        .iter()
        .find(|r| r.status != HealthStatus::Healthy)
        .map(|r| format!(": {}", r.detail))
        .unwrap_or_default();
    Ok(Verdict::Fail(format!(
        "{healthy} of {expected} instances of `{}` healthy after {retries} checks{detail}",
        state.candidate
    )))
}

/// `replicas` must be at least 1.
pub fn check_replicas(state: &RolloutState) -> Result<(), String> {
    if state.replicas == 0 {
        return Err(format!(
            "service `{}` has 0 replicas: nothing to roll out",
            state.service
        ));
    }
    Ok(())
}

/// Milliseconds of `d`, saturating.
pub fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
