//! Traffic: a weighted HTTP/1.1 reverse proxy per service. The controller
//! drives it through [`Traffic`]: in-process ([`Router`], for tests and the
//! benchmark) or in a proxy process over its control socket
//! ([`ProxyClient`], what `kiln` uses).
//!
//! It records, per version, requests, errors (5xx responses and failed
//! connections) and latency to the response headers in a fixed-bucket
//! histogram, reset at every `set-weight`.

mod control;
mod router;
mod server;
mod stats;
#[cfg(test)]
mod tests;
mod upstream;

use std::sync::Arc;

pub use control::{ProxyClient, run_daemon};
pub use router::{Backend, Router, RoutingTable};
pub use server::{ProxyBody, serve, serve_on_threads};
pub use stats::VersionStats;

use crate::contract::TrafficStats;
use crate::error::Result;
use crate::plugin::BoxFuture;

/// The controller's handle on a service's traffic.
pub trait Traffic: Send + Sync {
    /// Replaces the routing table atomically.
    fn set_table(&self, table: RoutingTable) -> BoxFuture<'_, Result<()>>;
    /// Traffic per version since the last reset.
    fn stats(&self) -> BoxFuture<'_, Result<Vec<TrafficStats>>>;
    /// Zeroes the counters.
    fn reset(&self) -> BoxFuture<'_, Result<()>>;
    /// Requests in flight to these instances, summed.
    fn in_flight(&self, instances: Vec<String>) -> BoxFuture<'_, Result<usize>>;
}

impl Traffic for Arc<Router> {
    fn set_table(&self, table: RoutingTable) -> BoxFuture<'_, Result<()>> {
        Router::set_table(self, table);
        Box::pin(async { Ok(()) })
    }

    fn stats(&self) -> BoxFuture<'_, Result<Vec<TrafficStats>>> {
        let stats = Router::stats(self);
        Box::pin(async { Ok(stats) })
    }

    fn reset(&self) -> BoxFuture<'_, Result<()>> {
        Router::reset(self);
        Box::pin(async { Ok(()) })
    }

    fn in_flight(&self, instances: Vec<String>) -> BoxFuture<'_, Result<usize>> {
        let n = instances.iter().map(|i| Router::in_flight(self, i)).sum();
        Box::pin(async move { Ok(n) })
    }
}
