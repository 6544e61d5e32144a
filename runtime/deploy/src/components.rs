//! Strategies and health checks as WASI components: [`Strategy`] and
//! [`HealthCheck`] over kiln-wasm's `deploy-strategy` and `health-check`
//! worlds. The records are the same on both sides ([`crate::contract`]
//! mirrors the WIT field for field), so this is a straight conversion.
//! Which component a rollout uses, and where its bytes come from, is the
//! caller's: these take a loaded [`Plugin`].

use std::sync::Arc;
use std::time::Instant;

use kiln_wasm::health as h;
use kiln_wasm::strategy as w;
use kiln_wasm::{Plugin, Runtime};

use crate::contract as c;
use crate::controller::Log;
use crate::plugin::{BoxFuture, HealthCheck, Strategy};

/// A loaded `deploy-strategy` component.
pub struct WasmStrategy {
    runtime: Arc<Runtime>,
    plugin: Arc<Plugin>,
}

impl WasmStrategy {
    /// The strategy `plugin`, called in `runtime` (the caller has checked
    /// its world).
    pub fn new(runtime: Arc<Runtime>, plugin: Arc<Plugin>) -> Self {
        Self { runtime, plugin }
    }
}

/// A loaded `health-check` component.
pub struct WasmHealth {
    runtime: Arc<Runtime>,
    plugin: Arc<Plugin>,
    log: Option<Log>,
}

impl WasmHealth {
    /// The health check `plugin`, called in `runtime`.
    pub fn new(runtime: Arc<Runtime>, plugin: Arc<Plugin>) -> Self {
        Self {
            runtime,
            plugin,
            log: None,
        }
    }

    /// Sends what the check writes (`host.log`, stdout, stderr) to `log`,
    /// each line after the instance's name, before the verdict is logged.
    pub fn with_log(mut self, log: Log) -> Self {
        self.log = Some(log);
        self
    }
}

impl HealthCheck for WasmHealth {
    fn metadata(&self) -> c::Metadata {
        metadata(&self.plugin)
    }

    fn check<'a>(
        &'a self,
        target: &'a c::Target,
        params: &'a [c::KeyValue],
        deadline: Instant,
    ) -> BoxFuture<'a, c::HealthReport> {
        Box::pin(async move {
            let target = h::Target {
                host: target.host.clone(),
                port: target.port,
                version: target.version.clone(),
                instance: target.instance.clone(),
            };
            let params: Vec<h::KeyValue> = params
                .iter()
                .map(|kv| h::KeyValue {
                    key: kv.key.clone(),
                    value: kv.value.clone(),
                })
                .collect();
            match self
                .plugin
                .check(&self.runtime, &target, &params, deadline)
                .await
            {
                Ok(checked) => {
                    if let Some(log) = &self.log {
                        for line in checked.output.lines() {
                            log(&format!("  {} | {line}", target.instance));
                        }
                    }
                    from_wit_report(checked.report)
                }
                Err(e) => c::HealthReport {
                    status: c::HealthStatus::Unknown,
                    detail: e.with_causes(),
                    metrics: Vec::new(),
                },
            }
        })
    }
}

fn from_wit_report(r: h::HealthReport) -> c::HealthReport {
    c::HealthReport {
        status: match r.status {
            h::HealthStatus::Healthy => c::HealthStatus::Healthy,
            h::HealthStatus::Unhealthy => c::HealthStatus::Unhealthy,
            h::HealthStatus::Unknown => c::HealthStatus::Unknown,
        },
        detail: r.detail,
        metrics: r
            .metrics
            .into_iter()
            .map(|m| c::Metric {
                name: m.name,
                value: m.value,
            })
            .collect(),
    }
}

/// Runs a future to completion on a thread of its own: the controller calls
/// strategies synchronously from inside its async runtime.
pub fn on_own_thread<F, T>(make: impl FnOnce() -> F + Send) -> Result<T, String>
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
        metadata(&self.plugin)
    }

    fn next(&mut self, state: &c::RolloutState) -> Result<c::NextStep, String> {
        let state = to_wit(state);
        let (runtime, plugin) = (&self.runtime, &self.plugin);
        from_wit_step(on_own_thread(|| plugin.next(runtime, &state))?)
    }

    /// `next` on a blocking-pool thread with a runtime of its own: the
    /// guest computes between epoch ticks, which on the engine's single
    /// thread would stall every other job's output and timers meanwhile.
    fn decide<'a>(
        &'a mut self,
        state: &'a c::RolloutState,
    ) -> BoxFuture<'a, Result<c::NextStep, String>> {
        let state = to_wit(state);
        let (runtime, plugin) = (self.runtime.clone(), self.plugin.clone());
        Box::pin(async move {
            let decided = tokio::task::spawn_blocking(move || {
                let local = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the async runtime: {e}"))?;
                Ok::<_, String>(local.block_on(plugin.next(&runtime, &state)))
            })
            .await
            .map_err(|_| "the strategy's thread panicked".to_owned())??;
            from_wit_step(decided)
        })
    }
}

type Decided = Result<Result<w::NextStep, String>, kiln_wasm::WasmError>;

fn from_wit_step(decided: Decided) -> Result<c::NextStep, String> {
    let step = decided.map_err(|e| e.with_causes())??;
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

fn metadata(plugin: &Plugin) -> c::Metadata {
    let m = &plugin.metadata;
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
                kiln_wasm::Capability::Fs { write: true } => c::Capability::Fs(c::FsAccess::Write),
                kiln_wasm::Capability::Fs { write: false } => c::Capability::Fs(c::FsAccess::Read),
                kiln_wasm::Capability::Network(s) => c::Capability::Network(s.clone()),
                kiln_wasm::Capability::Env(s) => c::Capability::Env(s.clone()),
                kiln_wasm::Capability::Secret(s) => c::Capability::Secret(s.clone()),
            })
            .collect(),
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

    fn bundled(name: &str) -> WasmStrategy {
        let runtime = Runtime::new(None, kiln_wasm::Limits::default()).expect("engine");
        let bytes = kiln_bundled::find(name, 1).expect("bundled").bytes;
        let reference = format!("kiln/{name}@1");
        let digest = kiln_wasm::sha256(bytes);
        let plugin = on_own_thread(|| runtime.load(&reference, bytes, &digest))
            .expect("thread")
            .expect("loads");
        WasmStrategy::new(Arc::new(runtime), plugin)
    }

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

    /// A strategy asleep in `next()` (a host call, which the epoch
    /// deadline never sees) is cut at its time limit, and meanwhile the
    /// controller's single-thread runtime keeps running its other tasks.
    #[test]
    fn a_sleeping_strategy_leaves_the_runtime_free_and_is_cut_at_its_limit() {
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::time::Duration;
        let limits = kiln_wasm::Limits {
            metadata_timeout: Duration::from_secs(2),
            ..kiln_wasm::Limits::default()
        };
        let runtime = Runtime::new(None, limits).expect("engine");
        let bytes = std::fs::read(kiln_test_plugins::ALL_AT_ONCE).expect("test plugin");
        let digest = kiln_wasm::sha256(&bytes);
        let plugin = on_own_thread(|| runtime.load("./all-at-once.wasm", &bytes, &digest))
            .expect("thread")
            .expect("loads");
        let mut strategy = WasmStrategy::new(Arc::new(runtime), plugin);
        let local = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        local.block_on(async {
            let ticks = Arc::new(AtomicU32::new(0));
            let ticker = tokio::spawn({
                let ticks = ticks.clone();
                async move {
                    loop {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        ticks.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            let state = c::RolloutState {
                memo: "probe-sleep".into(),
                ..first_rollout(Vec::new())
            };
            let started = Instant::now();
            let refused = strategy.decide(&state).await.expect_err("cut off");
            assert_eq!(
                refused,
                "plugin `./all-at-once.wasm` failed while deciding the next step: `next()` did not return within 2 s"
            );
            // Generous bounds: the point is "cut off, not an hour".
            assert!(started.elapsed() < Duration::from_secs(30));
            // 2 s of 50 ms ticks is 40; blocked, it would be 0.
            let ticked = ticks.load(Ordering::Relaxed);
            assert!(ticked >= 10, "the runtime ticked {ticked} times");
            ticker.abort();
        });
    }

    #[test]
    fn a_bundled_strategy_decides_through_the_adapter() {
        let mut rolling = bundled("rolling");
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
        let mut canary = bundled("canary");
        let err = canary
            .next(&first_rollout(vec![c::KeyValue {
                key: "weights".into(),
                value: "50,10".into(),
            }]))
            .expect_err("refused");
        assert!(err.starts_with("input `weights` is `50,10`"), "{err}");
    }
}
