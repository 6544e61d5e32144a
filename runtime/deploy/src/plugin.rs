//! The two narrow traits the controller drives: a [`Strategy`] decides, a
//! [`HealthCheck`] observes. The WASM host implements both over the
//! `deploy-strategy` and `health-check` worlds; the controller never knows
//! whether it talks to a component.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use crate::contract::{HealthReport, KeyValue, Metadata, NextStep, RolloutState, Target};

/// A boxed, sendable future, so the traits stay object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// `world deploy-strategy`: pure decision logic. It performs no effect;
/// everything it knows comes in [`RolloutState`], including its own memo.
pub trait Strategy: Send {
    /// What the strategy is and accepts (`metadata()`).
    fn metadata(&self) -> Metadata;

    /// The next effect (`next(state)`). An `Err` is a bad parameter or a
    /// strategy failure; the controller rolls back with its message.
    fn next(&mut self, state: &RolloutState) -> Result<NextStep, String>;

    /// [`Strategy::next`] for a caller on an async runtime (the rollout
    /// controller, which shares the engine's one thread with every other
    /// job): a strategy whose `next` takes time runs it off that thread.
    /// The default calls `next` in place, right for in-process strategies.
    fn decide<'a>(
        &'a mut self,
        state: &'a RolloutState,
    ) -> BoxFuture<'a, Result<NextStep, String>> {
        let step = self.next(state);
        Box::pin(std::future::ready(step))
    }
}

/// `world health-check`: checks one instance once.
pub trait HealthCheck: Send + Sync {
    /// What the check is and needs (`metadata()`).
    fn metadata(&self) -> Metadata;

    /// `check(target, params)`, answering by `deadline`. Never fails: a
    /// check that cannot decide, or not in time, reports `unknown`.
    fn check<'a>(
        &'a self,
        target: &'a Target,
        params: &'a [KeyValue],
        deadline: Instant,
    ) -> BoxFuture<'a, HealthReport>;
}
