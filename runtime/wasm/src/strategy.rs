//! Calling a `deploy-strategy` component: `next(state)`, with nothing
//! granted (no files, network, env or secrets), under the metadata time
//! limit. The deploy controller drives the loop; this is one call.
//!
//! A strategy also sees the same world on every call: clocks stopped at the
//! epoch and fixed bytes for randomness. Its decision can then depend only
//! on the state it is given (time comes in as `elapsed-ms`), which is what
//! makes `kiln deploy simulate` a faithful rehearsal of a real rollout.

use std::time::{Duration, Instant};

use wasmtime_wasi::{Deterministic, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder};

use crate::bindings::v0_1::strategy::kiln::plugin::strategy_types;
use crate::error::WasmError;
use crate::output::Captured;
use crate::runtime::{Plugin, Pre, Runtime, World};
use crate::trap::Interrupted;

pub use crate::bindings::v0_1::health::kiln::plugin::health_types::{
    HealthReport, HealthStatus, Metric,
};
pub use crate::bindings::v0_1::types::KeyValue;
pub use strategy_types::{
    Approval, ApprovalAnswer, Decision, NextStep, RolloutState, ScaleTo, TrafficStats,
    VersionReplicas,
};

impl Plugin {
    /// The strategy's next decision for `state`, its `params` completed
    /// with the declared defaults. `Ok(Err(message))` is the
    /// strategy's own refusal (a bad parameter); `Err` is a trap, a limit or
    /// a component that is not a strategy.
    pub async fn next(
        &self,
        runtime: &Runtime,
        state: &RolloutState,
    ) -> Result<Result<NextStep, String>, WasmError> {
        let Pre::Strategy(pre) = &self.pre else {
            return Err(WasmError::WrongWorld {
                plugin: self.reference.clone(),
                expected: World::DeployStrategy.name().to_owned(),
                found: self.world.name().to_owned(),
            });
        };
        let deadline = Instant::now() + runtime.limits.metadata_timeout;
        // Kept only to explain a failure: a strategy has no log of its own.
        let mut output = Captured::new(STDERR_KEPT);
        let state_data = crate::state::HostState {
            wasi: unchanging_world(&output),
            ..runtime.bare_state()
        };
        let mut store = runtime.store(state_data, Some(deadline), None);
        let state = RolloutState {
            params: self.metadata.with_default_params(&state.params),
            ..state.clone()
        };
        let decided = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_next(&mut store, &state).await
        };
        // The epoch deadline stops a guest that computes; one waiting in a
        // host call (a sleep) is stopped by dropping the call.
        let decided = tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), decided)
            .await
            .unwrap_or_else(|_| Err(wasmtime::Error::new(Interrupted)));
        decided.map_err(|e| {
            let mut message = if e.downcast_ref::<Interrupted>().is_some() {
                format!(
                    "`next()` did not return within {} s",
                    runtime.limits.metadata_timeout.as_secs()
                )
            } else {
                crate::trap::explain(&e, runtime.limits.memory)
            };
            if let Some(said) = last_words(&output.take()) {
                message.push_str(&format!("; it wrote: {said}"));
            }
            WasmError::Trap {
                plugin: self.reference.clone(),
                doing: "deciding the next step",
                message,
            }
        })
    }
}

/// The end of what a failed guest wrote, on one line: a Rust panic's
/// `panicked at …:` and its message, without the backtrace hint.
fn last_words(written: &str) -> Option<String> {
    let lines: Vec<&str> = written
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    let said = lines[lines.len().saturating_sub(3)..].join(" ");
    (!said.is_empty()).then_some(said)
}

/// What is kept of a strategy's stdout and stderr, each.
const STDERR_KEPT: usize = 4 * 1024;

/// WASI for a strategy: nothing granted, no clock that moves, no entropy;
/// what it writes goes to `output`.
fn unchanging_world(output: &Captured) -> WasiCtx {
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(output.stdout.clone())
        .stderr(output.stderr.clone())
        .wall_clock(Stopped)
        .monotonic_clock(Stopped)
        .secure_random(Deterministic::new(vec![0]))
        .insecure_random(Deterministic::new(vec![0]))
        .insecure_random_seed(0);
    wasi.build()
}

/// A clock that always reads zero.
struct Stopped;

impl HostWallClock for Stopped {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for Stopped {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        0
    }
}
