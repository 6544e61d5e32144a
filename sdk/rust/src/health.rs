//! The `health-check` world: `health: { uses: … }` of a deployment.

use crate::{Inputs, Metadata};

/// A health check. Implement it and export it with [`crate::health_check!`].
/// `params` are the `with:` values, read through the declared inputs.
pub trait HealthCheck {
    /// What this check is, accepts and needs.
    fn metadata() -> Metadata;

    /// Checks `target` once. A bad parameter is a report with
    /// [`HealthStatus::Unknown`] whose detail names it.
    fn check(target: &Target, params: &Inputs) -> HealthReport;
}

/// The instance to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The version the instance runs.
    pub version: String,
    /// Instance name, e.g. `web-v2-1`.
    pub instance: String,
}

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    /// The instance serves.
    Healthy,
    /// The instance answered wrongly or not at all.
    Unhealthy,
    /// The check could not decide.
    Unknown,
}

/// A measured number, e.g. `latency-ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: f64,
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    /// The verdict.
    pub status: HealthStatus,
    /// One line for the log, e.g. `GET /healthz: 200 in 3 ms`.
    pub detail: String,
    /// Measurements.
    pub metrics: Vec<Metric>,
}

impl HealthReport {
    /// A report with `status` and `detail` and no metrics.
    pub fn new(status: HealthStatus, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            metrics: Vec::new(),
        }
    }

    /// Adds a metric.
    pub fn metric(mut self, name: impl Into<String>, value: f64) -> Self {
        self.metrics.push(Metric {
            name: name.into(),
            value,
        });
        self
    }
}
