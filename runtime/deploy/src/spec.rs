//! What a rollout deploys: the service, its version, how instances run and
//! are checked. Stored with every rollout, so a resume or a manual rollback
//! can start instances of a version the current process never saw.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::contract::KeyValue;

/// One version of one service, fully rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// Service name (`[a-z][a-z0-9-]*`).
    pub service: String,
    /// Version label.
    pub version: String,
    /// What an instance runs.
    pub run: RunSpec,
    /// The port inside a container (`docker`); `process` instances get a
    /// free loopback port in `$PORT`.
    pub port: Option<u16>,
    /// Instances when fully rolled out.
    pub replicas: u32,
    /// Env of every instance (on top of kiln's own for `process`).
    pub env: Vec<(String, String)>,
    /// Directory `process` instances run in.
    pub workdir: PathBuf,
    /// When an instance counts as up.
    pub readiness: Readiness,
    /// `with:` of the health check.
    pub health_params: Vec<KeyValue>,
}

/// `command:` or `image:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunSpec {
    /// `sh -c COMMAND`.
    Command(String),
    /// A container image.
    Image(String),
}

/// When a started instance counts as up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// HTTP path answering below 500, or `None` for a TCP connect.
    pub path: Option<String>,
    /// Longest wait.
    #[serde(with = "millis")]
    pub timeout: Duration,
}

/// How a rollout runs, besides what it deploys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutSettings {
    /// The run that started it (for `kiln approve RUN GATE`).
    pub run: i64,
    /// Strategy reference (for the record).
    pub strategy: String,
    /// Strategy `with:`.
    pub strategy_params: Vec<KeyValue>,
    /// Health-check reference, if any.
    pub health: Option<String>,
    /// `sha256:…` of the health check's bytes as the rollout used them, so
    /// `resume` and `rollback` check with the same component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_digest: Option<String>,
    /// `approval: manual`: gate `promote` before promotion.
    pub manual_approval: bool,
    /// Gate timeout (then it counts as rejected).
    #[serde(with = "millis")]
    pub approval_timeout: Duration,
    /// Proxy listener.
    pub listen: SocketAddr,
    /// Sticky sessions.
    pub sticky: Option<Sticky>,
}

/// Sticky sessions: the same key always lands on the same version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sticky {
    /// This cookie (set by the proxy when absent).
    Cookie(String),
    /// This request header (lowercase).
    Header(String),
}

/// The version label of an image when none is given: its tag or digest.
pub fn image_version(image: &str) -> String {
    if let Some((_, digest)) = image.rsplit_once('@') {
        return digest.chars().take(19).collect();
    }
    let name = image.rsplit('/').next().unwrap_or(image);
    match name.rsplit_once(':') {
        Some((_, tag)) => tag.to_owned(),
        None => "latest".to_owned(),
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::image_version;

    #[test]
    fn image_versions() {
        assert_eq!(image_version("app:v2"), "v2");
        assert_eq!(image_version("localhost:5000/app:1.2"), "1.2");
        assert_eq!(image_version("localhost:5000/app"), "latest");
        assert_eq!(
            image_version("app@sha256:0123456789abcdef0123"),
            "sha256:0123456789ab"
        );
    }
}
