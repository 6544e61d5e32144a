//! Durations and times as people read them.

use std::time::{Duration, SystemTime};

/// `0.4s`, `12.3s`, `4m05s`, `2h03m`.
pub(crate) fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// `just now`, `42s ago`, `5m ago`, `3h ago`, `2d ago`.
pub(crate) fn ago(at: SystemTime, now: SystemTime) -> String {
    let secs = now.duration_since(at).map_or(0, |d| d.as_secs());
    match secs {
        0..5 => "just now".to_owned(),
        5..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86_400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(Duration::from_millis(350)), "0.3s");
        assert_eq!(duration(Duration::from_millis(59_940)), "59.9s");
        assert_eq!(duration(Duration::from_secs(245)), "4m05s");
        assert_eq!(duration(Duration::from_secs(7380)), "2h03m");
    }

    #[test]
    fn relative_times() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |s| now - Duration::from_secs(s);
        assert_eq!(ago(at(2), now), "just now");
        assert_eq!(ago(at(42), now), "42s ago");
        assert_eq!(ago(at(600), now), "10m ago");
        assert_eq!(ago(at(7200), now), "2h ago");
        assert_eq!(ago(at(200_000), now), "2d ago");
        assert_eq!(ago(now + Duration::from_secs(9), now), "just now");
    }
}
