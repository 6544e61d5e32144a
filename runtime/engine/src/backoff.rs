//! Delays between job attempts: exponential, capped, with jitter.

use std::time::Duration;

use kiln_pipeline::RetryPolicy;

/// Delay before attempt `failed_attempt + 1`: `backoff · 2^(n-1)`, capped at
/// `max_backoff`, plus up to 25 % jitter. Since the base doubles and the
/// jitter only adds, an uncapped delay is always longer than the one before.
pub(crate) fn delay(policy: &RetryPolicy, failed_attempt: u32) -> Duration {
    let exponent = failed_attempt.saturating_sub(1).min(30);
    let base = policy
        .backoff
        .saturating_mul(1u32 << exponent)
        .min(policy.max_backoff);
    base.mul_f64(1.0 + fastrand::f64() * 0.25)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff_ms: u64, max_ms: u64) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            backoff: Duration::from_millis(backoff_ms),
            max_backoff: Duration::from_millis(max_ms),
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn grows_exponentially_within_jitter() {
        let p = policy(100, 60_000);
        for (attempt, base) in [(1, 100u64), (2, 200), (3, 400), (4, 800)] {
            let d = delay(&p, attempt).as_millis() as u64;
            assert!(
                (base..=base * 5 / 4).contains(&d),
                "attempt {attempt}: {d} ms"
            );
        }
    }

    #[test]
    fn every_uncapped_delay_exceeds_the_previous_one() {
        let p = policy(100, 60_000);
        for _ in 0..1000 {
            assert!(delay(&p, 2) > delay(&p, 1));
            assert!(delay(&p, 3) > delay(&p, 2));
        }
    }

    #[test]
    fn is_capped() {
        let p = policy(1000, 1500);
        let d = delay(&p, 20);
        assert!(
            d >= Duration::from_millis(1500) && d <= Duration::from_millis(1875),
            "{d:?}"
        );
    }
}
