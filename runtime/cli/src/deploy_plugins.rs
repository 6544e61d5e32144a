//! Deployment strategies as WASI components: the deploy controller's
//! [`Strategy`] over kiln-wasm's `deploy-strategy` world. The records are
//! the same on both sides (kiln-deploy's `contract` mirrors the WIT field
//! for field), so this is a straight conversion.

use std::sync::Arc;

use kiln_deploy::Strategy;
use kiln_deploy::contract as c;
use kiln_wasm::strategy as w;
use kiln_wasm::{Limits, Plugin, Runtime, World};

/// A loaded strategy component.
pub(crate) struct WasmStrategy {
    runtime: Arc<Runtime>,
    plugin: Arc<Plugin>,
}

impl WasmStrategy {
    /// Loads the bundled strategy `uses` (`kiln/<name>@<major>`); `None`
    /// when no bundled plugin has that name.
    pub(crate) fn bundled(uses: &str) -> Option<Result<Self, String>> {
        let kiln_fetch::Reference::Bundled { name, major } =
            kiln_fetch::Reference::parse(uses).ok()?
        else {
            return None;
        };
        let bundled = kiln_bundled::find(&name, u64::from(major))?;
        Some(Self::load(uses, bundled.bytes))
    }

    fn load(uses: &str, bytes: &[u8]) -> Result<Self, String> {
        let runtime = Runtime::new(kiln_wasm::default_cache_dir(), Limits::default())
            .map_err(|e| crate::error::chain(&e))?;
        let digest = kiln_wasm::sha256(bytes);
        let plugin = on_own_thread(|| runtime.load(uses, bytes, &digest))?
            .map_err(|e| crate::error::chain(&e))?;
        if plugin.world != World::DeployStrategy {
            return Err(format!(
                "`{uses}` is a `{}` component; `strategy:` needs a `deploy-strategy`",
                plugin.world.name()
            ));
        }
        Ok(Self {
            runtime: Arc::new(runtime),
            plugin,
        })
    }
}

/// Runs a future to completion on a thread of its own: the controller calls
/// strategies synchronously from inside its async runtime.
fn on_own_thread<F, T>(make: impl FnOnce() -> F + Send) -> Result<T, String>
where
    F: std::future::Future<Output = T>,
    T: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the async runtime: {e}"))?;
                Ok(runtime.block_on(make()))
            })
            .join()
            .map_err(|_| "the strategy's thread panicked".to_owned())?
    })
}

impl Strategy for WasmStrategy {
    fn metadata(&self) -> c::Metadata {
        let m = &self.plugin.metadata;
        c::Metadata {
            name: m.name.clone(),
            version: m.version.clone(),
            description: m.description.clone(),
            inputs: m
                .inputs
                .iter()
                .map(|i| c::InputSpec {
                    name: i.name.clone(),
                    description: i.description.clone(),
                    required: i.required,
                    default: i.default.clone(),
                })
                .collect(),
            outputs: m
                .outputs
                .iter()
                .map(|o| c::OutputSpec {
                    name: o.name.clone(),
                    description: o.description.clone(),
                })
                .collect(),
            capabilities: m
                .capabilities
                .iter()
                .map(|cap| match cap {
                    kiln_wasm::Capability::Fs { write: true } => {
                        c::Capability::Fs(c::FsAccess::Write)
                    }
                    kiln_wasm::Capability::Fs { write: false } => {
                        c::Capability::Fs(c::FsAccess::Read)
                    }
                    kiln_wasm::Capability::Network(s) => c::Capability::Network(s.clone()),
                    kiln_wasm::Capability::Env(s) => c::Capability::Env(s.clone()),
                    kiln_wasm::Capability::Secret(s) => c::Capability::Secret(s.clone()),
                })
                .collect(),
        }
    }

    fn next(&mut self, state: &c::RolloutState) -> Result<c::NextStep, String> {
        let state = to_wit(state);
        let (runtime, plugin) = (&self.runtime, &self.plugin);
        let step = on_own_thread(|| plugin.next(runtime, &state))?
            .map_err(|e| crate::error::chain(&e))??;
        Ok(c::NextStep {
            memo: step.memo,
            decision: match step.decision {
                w::Decision::Scale(to) => c::Decision::Scale(c::ScaleTo {
                    version: to.version,
                    replicas: to.replicas,
                }),
                w::Decision::SetWeight(p) => c::Decision::SetWeight(p),
                w::Decision::CheckHealth => c::Decision::CheckHealth,
                w::Decision::Wait(ms) => c::Decision::Wait(ms),
                w::Decision::AwaitApproval(gate) => c::Decision::AwaitApproval(gate),
                w::Decision::Promote => c::Decision::Promote,
                w::Decision::Rollback(why) => c::Decision::Rollback(why),
                w::Decision::Done => c::Decision::Done,
            },
        })
    }
}

fn to_wit(s: &c::RolloutState) -> w::RolloutState {
    w::RolloutState {
        service: s.service.clone(),
        stable: s.stable.clone(),
        candidate: s.candidate.clone(),
        replicas: s.replicas,
        versions: s
            .versions
            .iter()
            .map(|v| w::VersionReplicas {
                version: v.version.clone(),
                replicas: v.replicas,
                healthy: v.healthy,
            })
            .collect(),
        candidate_weight: s.candidate_weight,
        health: s
            .health
            .iter()
            .map(|h| w::HealthReport {
                status: match h.status {
                    c::HealthStatus::Healthy => w::HealthStatus::Healthy,
                    c::HealthStatus::Unhealthy => w::HealthStatus::Unhealthy,
                    c::HealthStatus::Unknown => w::HealthStatus::Unknown,
                },
                detail: h.detail.clone(),
                metrics: h
                    .metrics
                    .iter()
                    .map(|m| w::Metric {
                        name: m.name.clone(),
                        value: m.value,
                    })
                    .collect(),
            })
            .collect(),
        traffic: s
            .traffic
            .iter()
            .map(|t| w::TrafficStats {
                version: t.version.clone(),
                requests: t.requests,
                errors: t.errors,
                p50_latency_ms: t.p50_latency_ms,
                p99_latency_ms: t.p99_latency_ms,
            })
            .collect(),
        approvals: s
            .approvals
            .iter()
            .map(|a| w::Approval {
                name: a.name.clone(),
                answer: match a.answer {
                    c::ApprovalAnswer::Pending => w::ApprovalAnswer::Pending,
                    c::ApprovalAnswer::Approved => w::ApprovalAnswer::Approved,
                    c::ApprovalAnswer::Rejected => w::ApprovalAnswer::Rejected,
                },
            })
            .collect(),
        elapsed_ms: s.elapsed_ms,
        params: s
            .params
            .iter()
            .map(|kv| w::KeyValue {
                key: kv.key.clone(),
                value: kv.value.clone(),
            })
            .collect(),
        memo: s.memo.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_rollout(params: Vec<c::KeyValue>) -> c::RolloutState {
        c::RolloutState {
            service: "web".into(),
            stable: Some("v1".into()),
            candidate: "v2".into(),
            replicas: 2,
            versions: vec![c::VersionReplicas {
                version: "v1".into(),
                replicas: 2,
                healthy: 2,
            }],
            candidate_weight: 0,
            health: Vec::new(),
            traffic: Vec::new(),
            approvals: Vec::new(),
            elapsed_ms: 0,
            params,
            memo: String::new(),
        }
    }

    #[test]
    fn a_bundled_strategy_decides_through_the_adapter() {
        let mut rolling = WasmStrategy::bundled("kiln/rolling@1")
            .expect("bundled")
            .expect("loads");
        assert_eq!(rolling.metadata().name, "rolling");
        let params = rolling
            .metadata()
            .inputs
            .into_iter()
            .filter_map(|i| i.default.map(|value| c::KeyValue { key: i.name, value }))
            .collect();
        let step = rolling.next(&first_rollout(params)).expect("decides");
        assert_eq!(
            step.decision,
            c::Decision::Scale(c::ScaleTo {
                version: "v2".into(),
                replicas: 1
            })
        );
        assert!(!step.memo.is_empty());
    }

    #[test]
    fn a_bad_parameter_comes_back_as_the_strategys_message() {
        let mut canary = WasmStrategy::bundled("kiln/canary@1")
            .expect("bundled")
            .expect("loads");
        let err = canary
            .next(&first_rollout(vec![c::KeyValue {
                key: "weights".into(),
                value: "50,10".into(),
            }]))
            .expect_err("refused");
        assert!(err.starts_with("input `weights` is `50,10`"), "{err}");
        assert!(WasmStrategy::bundled("kiln/nope@1").is_none());
    }
}
