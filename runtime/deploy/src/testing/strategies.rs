//! Stand-ins for `kiln/rolling`, `kiln/blue-green` and `kiln/canary`:
//! pure functions of the state, their position kept in the memo.

use crate::contract::{
    ApprovalAnswer, Decision, HealthStatus, Metadata, NextStep, RolloutState, ScaleTo,
};
use crate::plugin::Strategy;

fn meta(name: &str) -> Metadata {
    Metadata {
        name: name.into(),
        version: "1.0.0".into(),
        description: format!("native test stand-in for kiln/{name}"),
        inputs: Vec::new(),
        outputs: Vec::new(),
        capabilities: Vec::new(),
    }
}

fn step(decision: Decision, memo: impl Into<String>) -> Result<NextStep, String> {
    Ok(NextStep {
        decision,
        memo: memo.into(),
    })
}

fn scale(version: &str, replicas: u32) -> Decision {
    Decision::Scale(ScaleTo {
        version: version.into(),
        replicas,
    })
}

fn param<'s>(state: &'s RolloutState, key: &str) -> Option<&'s str> {
    state
        .params
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.value.as_str())
}

/// `30s`, `500ms`, `2m`; a bare number is seconds.
fn duration_ms(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not a duration (e.g. `30s`, `500ms`)");
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = text[..digits].parse().map_err(|_| bad())?;
    Ok(match &text[digits..] {
        "ms" => n,
        "" | "s" => n * 1000,
        "m" => n * 60_000,
        _ => return Err(bad()),
    })
}

/// Every candidate instance healthy, or why not.
fn all_healthy(state: &RolloutState) -> Result<(), String> {
    let wanted = state
        .versions
        .iter()
        .find(|v| v.version == state.candidate)
        .map_or(0, |v| v.replicas) as usize;
    if let Some(bad) = state
        .health
        .iter()
        .find(|r| r.status != HealthStatus::Healthy)
    {
        return Err(format!(
            "a `{}` instance is not healthy: {}",
            state.candidate, bad.detail
        ));
    }
    if state.health.len() < wanted {
        return Err(format!(
            "{} of {wanted} `{}` instances reported health",
            state.health.len(),
            state.candidate
        ));
    }
    Ok(())
}

/// One instance at a time: start a candidate, check it, give it its share,
/// retire one stable instance; promote when all are replaced.
#[derive(Debug, Clone, Copy)]
pub struct Rolling;

impl Strategy for Rolling {
    fn metadata(&self) -> Metadata {
        meta("rolling")
    }

    fn next(&mut self, s: &RolloutState) -> Result<NextStep, String> {
        let r = s.replicas;
        let (k, phase) = match s.memo.split_once(':') {
            None if s.memo == "promoted" => return step(Decision::Done, "done"),
            None => return step(scale(&s.candidate, 1), "1:scaled"),
            Some((k, phase)) => (k.parse::<u32>().map_err(|_| "bad memo")?, phase),
        };
        match phase {
            "scaled" => step(Decision::CheckHealth, format!("{k}:checked")),
            "checked" => {
                if let Err(why) = all_healthy(s) {
                    return step(Decision::Rollback(why), "rolled-back");
                }
                step(
                    Decision::SetWeight((100 * k / r) as u8),
                    format!("{k}:weighted"),
                )
            }
            "weighted" => match &s.stable {
                Some(stable) => step(scale(stable, r.saturating_sub(k)), format!("{k}:retired")),
                None => self.after_retire(s, k),
            },
            "retired" => self.after_retire(s, k),
            _ => Err(format!("unknown memo `{}`", s.memo)),
        }
    }
}

impl Rolling {
    fn after_retire(&self, s: &RolloutState, k: u32) -> Result<NextStep, String> {
        if k < s.replicas {
            step(scale(&s.candidate, k + 1), format!("{}:scaled", k + 1))
        } else {
            step(Decision::Promote, "promoted")
        }
    }
}

/// Start every candidate replica, check them, (optionally) ask `approval`,
/// switch all traffic at once, watch for `observe`, promote.
#[derive(Debug, Clone, Copy)]
pub struct BlueGreen;

impl Strategy for BlueGreen {
    fn metadata(&self) -> Metadata {
        meta("blue-green")
    }

    fn next(&mut self, s: &RolloutState) -> Result<NextStep, String> {
        match s.memo.as_str() {
            "" => step(scale(&s.candidate, s.replicas), "scaled"),
            "scaled" => step(Decision::CheckHealth, "checked"),
            "checked" => {
                if let Err(why) = all_healthy(s) {
                    return step(Decision::Rollback(why), "rolled-back");
                }
                match param(s, "approval") {
                    Some(gate) => step(Decision::AwaitApproval(gate.into()), "asked"),
                    None => step(Decision::SetWeight(100), "switched"),
                }
            }
            "asked" => {
                let gate = param(s, "approval").unwrap_or_default();
                match s
                    .approvals
                    .iter()
                    .find(|a| a.name == gate)
                    .map(|a| a.answer)
                {
                    Some(ApprovalAnswer::Approved) => step(Decision::SetWeight(100), "switched"),
                    _ => step(
                        Decision::Rollback(format!("approval `{gate}` was rejected")),
                        "rolled-back",
                    ),
                }
            }
            "switched" => {
                let observe = param(s, "observe")
                    .map(duration_ms)
                    .transpose()?
                    .unwrap_or(0);
                step(Decision::Wait(observe), "observed")
            }
            "observed" => {
                let candidate = s.traffic.iter().find(|t| t.version == s.candidate);
                if let Some(t) =
                    candidate.filter(|t| t.errors > 0 && t.errors * 100 >= t.requests * 5)
                {
                    return step(
                        Decision::Rollback(format!(
                            "{} of {} requests failed",
                            t.errors, t.requests
                        )),
                        "rolled-back",
                    );
                }
                step(Decision::Promote, "promoted")
            }
            "promoted" => step(Decision::Done, "done"),
            other => Err(format!("unknown memo `{other}`")),
        }
    }
}

/// Shift traffic through `weights` (default `10,50,100`), holding each for
/// `interval` while analysing the candidate every `poll`: more than
/// `max-error-rate` errors (a fraction, default 0.05) or a p99 above
/// `max-p99-latency` (ms) once `min-requests` arrived rolls back.
#[derive(Debug, Clone, Copy)]
pub struct Canary;

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct CanaryMemo {
    phase: String,
    step: usize,
    in_step_ms: u64,
}

impl Strategy for Canary {
    fn metadata(&self) -> Metadata {
        meta("canary")
    }

    fn next(&mut self, s: &RolloutState) -> Result<NextStep, String> {
        let weights: Vec<u8> = param(s, "weights")
            .unwrap_or("10,50,100")
            .split(',')
            .map(|w| w.trim().parse::<u8>().ok().filter(|w| *w <= 100))
            .collect::<Option<_>>()
            .ok_or("`weights` must be percentages like `10,50,100`")?;
        let interval = duration_ms(param(s, "interval").unwrap_or("30s"))?;
        let poll = duration_ms(param(s, "poll").unwrap_or("200ms"))?.max(1);
        let max_error_rate: f64 = param(s, "max-error-rate")
            .unwrap_or("0.05")
            .parse()
            .map_err(|_| "`max-error-rate` must be a fraction like `0.05`")?;
        let max_p99: Option<f64> = param(s, "max-p99-latency")
            .map(|v| {
                v.parse()
                    .map_err(|_| "`max-p99-latency` must be milliseconds")
            })
            .transpose()?;
        let min_requests: u64 = param(s, "min-requests")
            .unwrap_or("20")
            .parse()
            .map_err(|_| "`min-requests` must be a number")?;
        let mut memo: CanaryMemo = if s.memo.is_empty() {
            CanaryMemo::default()
        } else {
            serde_json::from_str(&s.memo).map_err(|e| format!("bad memo: {e}"))?
        };
        let out = |decision, memo: &CanaryMemo| {
            step(
                decision,
                serde_json::to_string(memo).expect("memo serialises"),
            )
        };
        match memo.phase.as_str() {
            "" => {
                memo.phase = "scaled".into();
                out(scale(&s.candidate, s.replicas), &memo)
            }
            "scaled" => {
                memo.phase = "checked".into();
                out(Decision::CheckHealth, &memo)
            }
            "checked" => {
                if let Err(why) = all_healthy(s) {
                    return step(Decision::Rollback(why), "rolled-back");
                }
                // A first deployment has nothing to compare with or fall
                // back to: it is promoted once healthy.
                if s.stable.is_none() {
                    memo.phase = "promoted".into();
                    return out(Decision::Promote, &memo);
                }
                memo.phase = "analysing".into();
                out(Decision::SetWeight(weights[0]), &memo)
            }
            "analysing" => {
                memo.in_step_ms += s.elapsed_ms;
                let weight = weights[memo.step];
                if let Some(t) = s
                    .traffic
                    .iter()
                    .find(|t| t.version == s.candidate)
                    .filter(|t| t.requests >= min_requests)
                {
                    let rate = t.errors as f64 / t.requests as f64;
                    if rate > max_error_rate {
                        return step(
                            Decision::Rollback(format!(
                                "error rate {:.1}% at weight {weight}% is above {:.1}% ({} of {} requests)",
                                rate * 100.0,
                                max_error_rate * 100.0,
                                t.errors,
                                t.requests
                            )),
                            "rolled-back",
                        );
                    }
                    if let Some(max) = max_p99.filter(|m| t.p99_latency_ms > *m) {
                        return step(
                            Decision::Rollback(format!(
                                "p99 latency {} ms at weight {weight}% is above {max} ms",
                                t.p99_latency_ms
                            )),
                            "rolled-back",
                        );
                    }
                }
                if memo.in_step_ms < interval {
                    let wait = poll.min(interval - memo.in_step_ms);
                    return out(Decision::Wait(wait), &memo);
                }
                if memo.step + 1 < weights.len() {
                    memo.step += 1;
                    memo.in_step_ms = 0;
                    return out(Decision::SetWeight(weights[memo.step]), &memo);
                }
                memo.phase = "promoted".into();
                out(Decision::Promote, &memo)
            }
            "promoted" => step(Decision::Done, "done"),
            other => Err(format!("unknown phase `{other}`")),
        }
    }
}

#[cfg(test)]
mod tests;
