//! Summaries of repeated timings.

use std::time::Duration;

/// Median, 99th percentile and extremes of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Middle sample (mean of the two middle ones for an even count).
    pub median: Duration,
    /// Nearest-rank 99th percentile: with fewer than 100 samples this is the
    /// slowest one, which is what a user waiting on it feels.
    pub p99: Duration,
    /// Fastest sample.
    pub min: Duration,
    /// Slowest sample.
    pub max: Duration,
}

impl Summary {
    /// Summarises `samples`; `None` if there are none.
    pub fn of(samples: &[Duration]) -> Option<Self> {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        let (&min, &max) = (sorted.first()?, sorted.last()?);
        let median = middle(&sorted, |a, b| (a + b) / 2)?;
        // Nearest rank: the smallest sample with at least 99 % of samples at
        // or below it.
        let rank = (n * 99).div_ceil(100).max(1);
        Some(Self {
            median,
            p99: sorted[rank - 1],
            min,
            max,
        })
    }
}

/// The median of `sorted` samples: the middle one, or `mean` of the two
/// middle ones for an even count; `None` if there are none.
pub fn middle<T: Copy>(sorted: &[T], mean: impl Fn(T, T) -> T) -> Option<T> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some(mean(sorted[n / 2 - 1], sorted[n / 2])),
    }
}

/// Milliseconds with three decimals, for tables.
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Microseconds with one decimal, for per-job costs.
pub fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_list(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn odd_count_median_is_the_middle_sample() {
        let s = Summary::of(&ms_list(&[5, 1, 3])).unwrap();
        assert_eq!(s.median, Duration::from_millis(3));
        assert_eq!(
            (s.min, s.max),
            (Duration::from_millis(1), Duration::from_millis(5))
        );
    }

    #[test]
    fn even_count_median_is_the_mean_of_the_middle_two() {
        let s = Summary::of(&ms_list(&[4, 1, 2, 3])).unwrap();
        assert_eq!(s.median, Duration::from_micros(2500));
    }

    #[test]
    fn p99_is_nearest_rank() {
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(
            Summary::of(&ms_list(&hundred)).unwrap().p99,
            Duration::from_millis(99)
        );
        let fifty: Vec<u64> = (1..=50).collect();
        assert_eq!(
            Summary::of(&ms_list(&fifty)).unwrap().p99,
            Duration::from_millis(50)
        );
    }

    #[test]
    fn no_samples_no_summary() {
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn formats_units() {
        assert_eq!(ms(Duration::from_micros(12_345)), "12.345 ms");
        assert_eq!(us(Duration::from_nanos(85_040)), "85.0 µs");
    }
}
