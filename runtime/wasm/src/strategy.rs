//! Calling a `deploy-strategy` component: `next(state)`, with nothing
//! granted (no files, network, env or secrets), under the metadata time
//! limit. The deploy controller drives the loop; this is one call.

use std::time::Instant;

use crate::bindings::v0_1::strategy::kiln::plugin::strategy_types;
use crate::error::WasmError;
use crate::runtime::{Plugin, Pre, Runtime, World};

pub use crate::bindings::v0_1::health::kiln::plugin::health_types::{
    HealthReport, HealthStatus, Metric,
};
pub use crate::bindings::v0_1::types::KeyValue;
pub use strategy_types::{
    Approval, ApprovalAnswer, Decision, NextStep, RolloutState, ScaleTo, TrafficStats,
    VersionReplicas,
};

impl Plugin {
    /// The strategy's next decision for `state`. `Ok(Err(message))` is the
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
        let mut store = runtime.store(runtime.bare_state(), Some(deadline), None);
        let trap = |e: wasmtime::Error| WasmError::Trap {
            plugin: self.reference.clone(),
            doing: "deciding the next step",
            message: crate::trap::explain(&e, runtime.limits.memory),
        };
        let instance = pre.instantiate_async(&mut store).await.map_err(trap)?;
        instance.call_next(&mut store, state).await.map_err(trap)
    }
}
