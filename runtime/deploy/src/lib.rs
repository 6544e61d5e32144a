//! kiln's deployments: the rollout controller of `deploy:` jobs.
//!
//! Owns the controller ([`controller`]), the targets instances run on
//! ([`platform`]), the weighted traffic proxy ([`proxy`]), approvals and
//! the durable rollout journal ([`journal`]), and the dry-run simulator
//! ([`simulate`]). The controller drives strategies and health checks
//! through the [`Strategy`] and [`HealthCheck`] traits, whose types mirror
//! the WIT records ([`contract`]); [`components`] implements them over
//! loaded WASI components. Finding and fetching components is the caller's. It never prints; progress goes to a
//! [`controller::Log`] the caller renders.
#![warn(missing_docs)]

pub mod components;
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
#[cfg(test)]
mod tests;

pub use controller::{Controller, Outcome};
pub use error::{DeployError, Result};
pub use plugin::{BoxFuture, HealthCheck, Strategy};
