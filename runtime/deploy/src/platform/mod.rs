//! Where instances run, behind [`Platform`]: [`ProcessPlatform`] (local
//! processes on loopback ports) here; the `docker` target is a
//! [`Platform`] kiln-docker implements, so this crate never imports
//! bollard. [`Targets`] puts the two behind one [`Platform`], so a
//! controller started by any command can stop whatever a journal records.

mod process;
mod readiness;
mod targets;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use process::ProcessPlatform;
pub(crate) use process::{group_alive, kill_group, proc_start_time};
pub use readiness::{probe, wait_ready};
pub use targets::Targets;

use crate::error::Result;
use crate::plugin::BoxFuture;
use crate::spec::ServiceSpec;

/// One instance to start.
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    /// Unique name, e.g. `web-v2-r7-1` (service, version, rollout, index).
    pub name: String,
    /// The rollout that starts it; `process` instances carry it in
    /// `$KILN_DEPLOY_ROLLOUT` so a resume can find strays.
    pub rollout: i64,
    /// What to run.
    pub service: ServiceSpec,
    /// Where the instance's stdout and stderr go.
    pub log: PathBuf,
}

/// A started instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Where it listens.
    pub host: String,
    /// Its port on `host`.
    pub port: u16,
    /// How to find it again, from any process.
    pub handle: InstanceHandle,
}

/// What identifies an instance across kiln processes (recorded in the
/// journal, so `kiln deploy resume` can stop what a dead kiln started).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceHandle {
    /// A process group led by `pid`; `start_time` (clock ticks after boot,
    /// `/proc/PID/stat`) tells a reused pid from ours.
    Process {
        /// Leader pid = process group id.
        pid: i32,
        /// Its start time.
        start_time: u64,
    },
    /// A container.
    Container {
        /// Container id.
        id: String,
    },
}

/// Runs instances. Implementations must make [`Platform::stop`] leave
/// nothing behind, and must be able to stop an instance from its
/// [`InstanceHandle`] alone (the process that started it may be dead).
pub trait Platform: Send + Sync {
    /// Starts one instance and returns once it is *started* (readiness is
    /// the controller's job, the same for every platform).
    fn start<'a>(&'a self, spec: &'a InstanceSpec) -> BoxFuture<'a, Result<Instance>>;

    /// Stops an instance: a graceful signal, then a hard kill after
    /// `grace`. Stopping an instance that is already gone is not an error.
    fn stop<'a>(&'a self, handle: &'a InstanceHandle, grace: Duration)
    -> BoxFuture<'a, Result<()>>;

    /// Whether the instance is still running. Asynchronous because asking
    /// can mean a round trip (Docker's inspect).
    fn alive<'a>(&'a self, handle: &'a InstanceHandle) -> BoxFuture<'a, bool>;

    /// Stops instances of a service that the journal holds no live handle
    /// for (see [`Strays`]) and returns how many it stopped. Called under
    /// the service's lock, so nothing is starting instances meanwhile.
    fn stop_strays<'a>(&'a self, strays: &'a Strays<'a>) -> BoxFuture<'a, Result<usize>>;
}

/// What a platform needs to find the strays of one service: instances a
/// dead controller started without recording their handle, and anything
/// else it left that the journal no longer holds as live.
#[derive(Debug, Clone, Copy)]
pub struct Strays<'a> {
    /// The service.
    pub service: &'a str,
    /// Instances recorded as `starting`: created, or about to be, by a
    /// controller that died before recording their handle.
    pub starting: &'a [String],
    /// Handles the journal holds as live: these are not strays.
    pub live: &'a [InstanceHandle],
}
