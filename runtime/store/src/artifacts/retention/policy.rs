//! The retention policy: its four settings, `retention.conf`, and the
//! units they are written in.

use std::path::Path;
use std::time::Duration;

use super::super::{Error, Result};

/// File in the state directory holding the default policy.
pub const CONFIG_FILE: &str = "retention.conf";

/// Which entries to drop. `Default` keeps everything (only orphaned blobs
/// are collected).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Drop entries created longer ago than this.
    pub max_age: Option<Duration>,
    /// Drop entries not downloaded or restored for this long.
    pub max_idle: Option<Duration>,
    /// Keep only the artifacts of the newest N runs of each pipeline (and
    /// the newest N caches of each pipeline).
    pub keep_runs: Option<u32>,
    /// Drop least recently used entries until the blobs total at most this.
    pub max_size: Option<u64>,
}

impl Policy {
    /// Reads `retention.conf`: `key = value` lines, `#` comments. Keys:
    /// `max-age`, `max-idle` (durations: `30d`, `12h`, `90m`, `45s`),
    /// `keep-runs` (a count), `max-size` (`500MiB`, `10GiB`, `1000000`).
    /// A missing file is the default policy.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(Error::Source {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let mut policy = Self::default();
        for (index, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = |message: String| Error::Config {
                path: path.to_owned(),
                line: index + 1,
                message,
            };
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| bad(format!("expected `key = value`, found `{line}`")))?;
            let (key, value) = (key.trim(), value.trim().trim_matches('"'));
            policy.set(key, value).map_err(bad)?;
        }
        Ok(policy)
    }

    /// Sets one setting by its config-file name.
    pub fn set(&mut self, key: &str, value: &str) -> std::result::Result<(), String> {
        match key {
            "max-age" => self.max_age = Some(parse_duration(value)?),
            "max-idle" => self.max_idle = Some(parse_duration(value)?),
            "keep-runs" => {
                self.keep_runs =
                    Some(value.parse().map_err(|_| {
                        format!("`keep-runs` must be a whole number, found `{value}`")
                    })?)
            }
            "max-size" => self.max_size = Some(parse_size(value)?),
            other => {
                return Err(format!(
                    "unknown setting `{other}`; valid settings are max-age, max-idle, keep-runs, max-size"
                ));
            }
        }
        Ok(())
    }

    /// `self` with every setting `over` has replacing ours (CLI flags over
    /// the file).
    pub fn overridden_by(self, over: Policy) -> Policy {
        Policy {
            max_age: over.max_age.or(self.max_age),
            max_idle: over.max_idle.or(self.max_idle),
            keep_runs: over.keep_runs.or(self.keep_runs),
            max_size: over.max_size.or(self.max_size),
        }
    }
}

/// `30d`, `12h`, `90m`, `45s`, `0s`, or bare seconds.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration (e.g. `30d`, `12h`, `90m`, `45s`)");
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = text[..digits].parse().map_err(|_| bad())?;
    let unit = match &text[digits..] {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(unit).map(Duration::from_secs).ok_or_else(bad)
}

/// `1000`, `500KiB`, `500MiB`, `10GiB` (also `KB`/`MB`/`GB` as powers of 1000).
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let bad = || format!("`{text}` is not a size (e.g. `500MiB`, `10GiB`)");
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = text[..digits].parse().map_err(|_| bad())?;
    let unit: u64 = match text[digits..].trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(bad()),
    };
    n.checked_mul(unit).ok_or_else(bad)
}

/// `30d`, `12h`, `5m`, `45s`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `1.5 MiB`, `512 B`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values() {
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(
            parse_duration("soon"),
            Err("`soon` is not a duration (e.g. `30d`, `12h`, `90m`, `45s`)".into())
        );
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("500"), Ok(500));
        assert_eq!(
            parse_size("5 parsecs"),
            Err("`5 parsecs` is not a size (e.g. `500MiB`, `10GiB`)".into())
        );
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_duration(Duration::from_secs(7 * 86_400)), "7d");
    }

    #[test]
    fn config_file_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        std::fs::write(
            &path,
            "# keep a week\nmax-age = 7d\nkeep-runs = 3\nmax-size = 1GiB\n",
        )
        .unwrap();
        assert_eq!(
            Policy::load(&path).unwrap(),
            Policy {
                max_age: Some(Duration::from_secs(7 * 86_400)),
                max_idle: None,
                keep_runs: Some(3),
                max_size: Some(1 << 30),
            }
        );
        std::fs::write(&path, "max-age = 7d\nmax-agee = 1d\n").unwrap();
        assert_eq!(
            Policy::load(&path).unwrap_err().to_string(),
            format!(
                "{}:2: unknown setting `max-agee`; valid settings are max-age, max-idle, keep-runs, max-size",
                path.display()
            )
        );
        assert_eq!(
            Policy::load(&dir.path().join("none")).unwrap(),
            Policy::default()
        );
    }
}
