//! Per-version traffic counters: requests, errors (5xx and failed
//! connections) and a fixed-bucket latency histogram, all atomics so the
//! request path never takes a lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::contract::TrafficStats;

/// Buckets grow by 25 % from 50 µs: 64 of them reach past 60 s, and a
/// percentile read from a bucket's upper bound is within 25 % of the truth.
const BUCKETS: usize = 64;
const FIRST_BOUND_US: f64 = 50.0;
const GROWTH: f64 = 1.25;

/// Counters of one version since the last reset.
#[derive(Debug)]
pub struct VersionStats {
    version: String,
    requests: AtomicU64,
    errors: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

fn bound_us(bucket: usize) -> f64 {
    FIRST_BOUND_US * GROWTH.powi(bucket as i32)
}

fn bucket_of(latency: Duration) -> usize {
    let us = latency.as_secs_f64() * 1e6;
    if us <= FIRST_BOUND_US {
        return 0;
    }
    let i = ((us / FIRST_BOUND_US).ln() / GROWTH.ln()).ceil() as usize;
    i.min(BUCKETS - 1)
}

impl VersionStats {
    /// Empty counters for `version`.
    pub fn new(version: &str) -> Self {
        Self {
            version: version.to_owned(),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Counts one answered (or failed) request.
    pub fn record(&self, latency: Duration, error: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.buckets[bucket_of(latency)].fetch_add(1, Ordering::Relaxed);
    }

    /// Zeroes the counters (a new strategy step starts).
    pub fn reset(&self) {
        self.requests.store(0, Ordering::Relaxed);
        self.errors.store(0, Ordering::Relaxed);
        for b in &self.buckets {
            b.store(0, Ordering::Relaxed);
        }
    }

    /// The counters as the strategy sees them.
    pub fn snapshot(&self) -> TrafficStats {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        TrafficStats {
            version: self.version.clone(),
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            p50_latency_ms: percentile(&counts, 0.50),
            p99_latency_ms: percentile(&counts, 0.99),
        }
    }
}

/// The upper bound (ms) of the bucket holding the `q` quantile; 0 when empty.
fn percentile(counts: &[u64], q: f64) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return (bound_us(i) / 1000.0 * 1000.0).round() / 1000.0;
        }
    }
    bound_us(BUCKETS - 1) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_bucket_bounds() {
        let s = VersionStats::new("v1");
        for _ in 0..98 {
            s.record(Duration::from_micros(900), false);
        }
        s.record(Duration::from_millis(40), true);
        s.record(Duration::from_millis(40), true);
        let t = s.snapshot();
        assert_eq!((t.requests, t.errors), (100, 2));
        // 900 µs falls in the bucket bounded by 50·1.25^13 ≈ 906 µs.
        assert_eq!(t.p50_latency_ms, 0.909);
        assert!(
            t.p99_latency_ms >= 40.0 && t.p99_latency_ms < 50.0,
            "{}",
            t.p99_latency_ms
        );
        s.reset();
        assert_eq!(s.snapshot().requests, 0);
        assert_eq!(s.snapshot().p99_latency_ms, 0.0);
    }

    #[test]
    fn buckets_cover_the_range() {
        assert_eq!(bucket_of(Duration::ZERO), 0);
        assert_eq!(bucket_of(Duration::from_secs(3600)), BUCKETS - 1);
        for us in [51, 100, 1000, 12_345, 999_999] {
            let b = bucket_of(Duration::from_micros(us));
            assert!(
                bound_us(b) >= us as f64 && bound_us(b - 1) < us as f64,
                "{us}"
            );
        }
    }
}
