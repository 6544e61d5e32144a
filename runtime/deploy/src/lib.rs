//! kiln's deployments: the rollout controller of `deploy:` jobs.
//!
//! Owns the controller ([`controller`]), the targets instances run on
//! ([`platform`]), the weighted traffic proxy ([`proxy`]), approvals and
//! the durable rollout journal ([`journal`]), and the dry-run simulator
//! ([`simulate`]). It loads no plugin: strategies and health checks come in
//! through the [`Strategy`] and [`HealthCheck`] traits, whose types mirror
//! the WIT records ([`contract`]). It never prints; progress goes to a
//! [`controller::Log`] the caller renders.
#![warn(missing_docs)]

pub mod contract;
pub mod controller;
mod error;
pub mod journal;
pub mod platform;
mod plugin;
pub mod proxy;
pub mod resume;
pub mod simulate;
pub mod spec;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
#[cfg(test)]
mod tests;

pub use controller::{Controller, Outcome};
pub use error::{DeployError, Result};
pub use plugin::{BoxFuture, HealthCheck, Strategy};

/// The native test stand-in for a first-party strategy reference, in
/// builds with the `test-support` feature (test builds of `kiln`); `None`
/// otherwise. Production strategies are WASM components.
pub fn stand_in_strategy(uses: &str) -> Option<Box<dyn Strategy>> {
    #[cfg(any(test, feature = "test-support"))]
    return testing::strategy(uses);
    #[cfg(not(any(test, feature = "test-support")))]
    {
        let _ = uses;
        None
    }
}

/// Like [`stand_in_strategy`], for health checks.
pub fn stand_in_health(uses: &str) -> Option<std::sync::Arc<dyn HealthCheck>> {
    #[cfg(any(test, feature = "test-support"))]
    return testing::health(uses);
    #[cfg(not(any(test, feature = "test-support")))]
    {
        let _ = uses;
        None
    }
}
