//! Container settings of a job: isolation, resources, image pulls and
//! service sidecars. Plain data, valid by construction (the decoder checks
//! every range); the container executor turns it into Docker calls.

use std::time::Duration;

use crate::expr::Template;
use crate::source::Span;

/// `container:` and `resources:` of a job, with kiln's defaults filled in.
/// They apply to every container of the job: the job's own (`image:` on
/// the job) and each step's (`image:` on a step).
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerOptions {
    /// `user:` — `uid`, `uid:gid` or a name known to the image; `None` keeps
    /// the image's user.
    pub user: Option<String>,
    /// `network:` — `bridge` (default) or `none`.
    pub network: Network,
    /// `read-only:` — mount the root filesystem read-only.
    pub read_only: bool,
    /// `tmpfs:` — writable in-memory mounts (default `/tmp` when read-only).
    pub tmpfs: Vec<String>,
    /// `init:` — run a tiny init as PID 1 that reaps zombies (default on).
    pub init: bool,
    /// `pull:` — when to pull the image.
    pub pull: PullPolicy,
    /// `volumes:` — extra bind mounts (`host:container[:ro]`).
    pub volumes: Vec<Volume>,
    /// `resources:` limits.
    pub resources: Resources,
}

impl Default for ContainerOptions {
    fn default() -> Self {
        Self {
            user: None,
            network: Network::Bridge,
            read_only: false,
            tmpfs: Vec::new(),
            init: true,
            pull: PullPolicy::IfMissing,
            volumes: Vec::new(),
            resources: Resources::default(),
        }
    }
}

/// A bind mount from `container.volumes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// Host path; relative paths are relative to the workspace.
    pub host: String,
    /// Absolute path inside the container.
    pub container: String,
    /// Mounted read-only (`:ro`).
    pub read_only: bool,
}

/// Container network mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// Docker's bridge (or the job's own network when it has services).
    #[default]
    Bridge,
    /// No network at all but loopback.
    None,
}

/// When an image is pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Only when it is not present locally (the default).
    #[default]
    IfMissing,
    /// Before every job attempt.
    Always,
    /// Never: a missing image is an error.
    Never,
}

/// `resources:` — limits of each container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resources {
    /// Memory limit in bytes (swap is not added on top).
    pub memory: u64,
    /// CPU limit in billionths of a CPU (Docker's `NanoCpus`).
    pub nano_cpus: u64,
    /// Most processes (and threads) alive at once.
    pub pids: u32,
}

/// Defaults that stop a runaway step without getting in the way of a
/// normal build: 4 GiB, 2 CPUs, 1024 processes.
impl Default for Resources {
    fn default() -> Self {
        Self {
            memory: 4 << 30,
            nano_cpus: 2_000_000_000,
            pids: 1024,
        }
    }
}

/// One `services:` sidecar.
#[derive(Debug, Clone)]
pub struct Service {
    /// The key: also its host name on the job's network.
    pub name: String,
    /// Image reference.
    pub image: Template,
    /// Environment of the service.
    pub env: Vec<(String, Template)>,
    /// Ports published on the host's loopback (`host:container`).
    pub ports: Vec<(u16, u16)>,
    /// Command (replaces the image's `CMD`); empty keeps it.
    pub command: Vec<String>,
    /// Readiness check; without one a service is ready once it runs (or
    /// once the image's own `HEALTHCHECK` passes).
    pub health: Option<HealthCheck>,
    /// Where the service was declared.
    pub span: Span,
}

/// `health:` of a service: a shell command run inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Run with `sh -c` in the service container; exit 0 means healthy.
    pub command: String,
    /// Time between checks.
    pub interval: Duration,
    /// Longest one check may take.
    pub timeout: Duration,
    /// Failed checks before the service counts as unhealthy.
    pub retries: u32,
}
