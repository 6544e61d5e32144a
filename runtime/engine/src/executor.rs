//! The executor lifecycle: how a step's work is carried out.
//!
//! The engine owns time (deadlines), cancellation and masking; an executor
//! only starts a unit of work, streams its raw output and stops it when told.
//! Every backend (host processes here; containers and WASM components in
//! their own crates) gets the same guarantees from the engine this way.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use kiln_pipeline::{ContainerOptions, Job};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::event::Stream;

/// A boxed, sendable future, so [`Executor`] stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Raw output from a running step. The engine splits it into lines and
/// masks secrets before anything leaves the engine.
pub type OutputSender = mpsc::UnboundedSender<(Stream, Vec<u8>)>;

/// One script step, fully rendered: no expressions left in it.
#[derive(Debug, Clone)]
pub struct StepRequest {
    /// Job name (for diagnostics and labels).
    pub job: String,
    /// Step index in the job.
    pub step: usize,
    /// The script text (secrets may be substituted into it: never log it).
    pub script: String,
    /// The script is the pipeline's text as written: no `${{ }}` was
    /// rendered into it, so it holds no secret unless the file does. Only
    /// then may an executor put it where other users can read it (a
    /// command line).
    pub literal_script: bool,
    /// Shell command line; the script's path is appended.
    pub shell: Vec<String>,
    /// Working directory.
    pub workdir: PathBuf,
    /// The complete environment of the step (nothing else is inherited).
    pub env: Env,
    /// Where the script file is written (a private per-run directory).
    pub script_path: PathBuf,
    /// The run's workspace (`KILN_WORKSPACE`); `workdir` lies inside it.
    pub workspace: PathBuf,
    /// Where the step runs; [`Routed`] picks the executor by it.
    pub placement: Placement,
}

/// A step's complete environment: what every host step of a run inherits,
/// shared rather than copied per step, and what is set on top of it.
/// Copying some forty inherited variables for each step, and freeing them
/// after, was a tenth of kiln's own work on short steps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    inherited: Arc<[(String, String)]>,
    /// Each name at most once; a name here hides the inherited one.
    set: Vec<(String, String)>,
}

impl Env {
    /// An environment that starts as `inherited`.
    pub fn inheriting(inherited: Arc<[(String, String)]>) -> Self {
        Self {
            inherited,
            set: Vec::new(),
        }
    }

    /// Sets `name`, replacing an inherited or earlier value.
    pub fn set(&mut self, name: &str, value: String) {
        crate::context::set(&mut self.set, name, value);
    }

    /// The value of `name`, if set or inherited.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.set
            .iter()
            .chain(self.inherited.iter())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every variable once: the inherited ones not set over, then the set
    /// ones in the order they were first set.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.inherited
            .iter()
            .filter(|(k, _)| !self.set.iter().any(|(name, _)| name == k))
            .chain(self.set.iter())
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl FromIterator<(String, String)> for Env {
    /// An environment of exactly these variables, later ones winning.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        let mut env = Env::default();
        for (k, v) in pairs {
            env.set(&k, v);
        }
        env
    }
}

/// Where a step runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// On the host, as a process (no `image:` anywhere).
    Host,
    /// In the job's container, which `prepare` created (`image:` on the job).
    JobContainer,
    /// In a container of its own, created and removed around the step
    /// (`image:` on the step).
    Container(ContainerRequest),
}

/// A container to create, every expression already rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerRequest {
    /// Image reference.
    pub image: String,
    /// Isolation, resources, pull policy.
    pub options: ContainerOptions,
}

/// A `services:` sidecar to start before the job's first step.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRequest {
    /// Its name, also its host name on the job's network.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Its environment.
    pub env: Vec<(String, String)>,
    /// `(host, container)` ports published on 127.0.0.1.
    pub ports: Vec<(u16, u16)>,
    /// Command replacing the image's; empty keeps it.
    pub command: Vec<String>,
    /// Readiness check.
    pub health: Option<kiln_pipeline::HealthCheck>,
}

/// One job attempt, as `prepare` and `cleanup` see it.
#[derive(Debug, Clone)]
pub struct JobRequest<'a> {
    /// The job.
    pub job: &'a Job,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// The run's workspace.
    pub workspace: PathBuf,
    /// The job's container (`image:` on the job), rendered.
    pub container: Option<ContainerRequest>,
    /// The job's services, rendered.
    pub services: Vec<ServiceRequest>,
    /// Cancelled when the attempt must end before its first step: the
    /// job's deadline passed or the run is stopping (Ctrl-C, pipeline
    /// timeout). [`Executor::prepare`] then stops waiting (pulls, health
    /// checks) and returns promptly, having kept track of what it created:
    /// [`Executor::cleanup`] follows as always.
    pub stop: CancellationToken,
}

impl JobRequest<'_> {
    /// Whether the job needs a container backend at all before its steps.
    pub fn uses_containers(&self) -> bool {
        self.container.is_some() || !self.services.is_empty()
    }
}

/// How the engine tells a running step to stop.
#[derive(Debug, Clone)]
pub struct StepControl {
    /// Graceful stop: SIGTERM (or the backend's equivalent), then after
    /// [`StepControl::grace`] a hard kill.
    pub stop: CancellationToken,
    /// Hard kill at once (a second Ctrl-C).
    pub kill: CancellationToken,
    /// Time between the graceful stop and the hard kill.
    pub grace: Duration,
}

/// How a step's process ended, as the executor saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepExit {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal (including our own stop).
    Signaled(i32),
    /// The executor could not run the step at all.
    Infrastructure(String),
}

/// A backend that runs steps. Implementations must leave nothing behind
/// when [`Executor::run_step`] returns: no process, container or temp file
/// that outlives the step. (A backend may finish removing what a step left
/// in the background when whoever runs the engine waits for that before
/// the run ends, as kiln's container backend does.)
pub trait Executor: Send + Sync {
    /// Called once per job attempt before its first step (create a
    /// container, a network …). It must observe [`JobRequest::stop`]: the
    /// engine cancels it at the job's deadline or when the run stops, and
    /// waits for this to return. The default does nothing.
    fn prepare<'a>(&'a self, _job: &'a JobRequest<'a>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    /// Runs one script step to completion, streaming output into `output`
    /// and honouring `control`. Dropping `output` signals end of output.
    fn run_step(
        &self,
        request: StepRequest,
        output: OutputSender,
        control: StepControl,
    ) -> BoxFuture<'static, StepExit>;

    /// Called once per job attempt after its last step, whatever happened.
    /// The default does nothing.
    fn cleanup<'a>(&'a self, _job: &'a JobRequest<'a>) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// The one place that decides which backend runs what: host steps go to
/// `host`, container work (`image:` on a job or step, `services:`) to
/// `containers`. The engine holds a single [`Executor`]; the CLI builds this
/// with the backends it has, so the engine never names Docker.
pub struct Routed {
    host: std::sync::Arc<dyn Executor>,
    containers: Option<std::sync::Arc<dyn Executor>>,
}

impl Routed {
    /// Everything on `host` until [`Routed::with_containers`] adds a backend.
    pub fn new(host: std::sync::Arc<dyn Executor>) -> Self {
        Self {
            host,
            containers: None,
        }
    }

    /// Container work goes to `containers`.
    pub fn with_containers(mut self, containers: std::sync::Arc<dyn Executor>) -> Self {
        self.containers = Some(containers);
        self
    }

    fn containers(&self) -> Result<&dyn Executor, String> {
        self.containers.as_deref().ok_or_else(|| {
            "this build of kiln has no container executor; remove `image:` and `services:` to run on the host".into()
        })
    }
}

impl Executor for Routed {
    fn prepare<'a>(&'a self, job: &'a JobRequest<'a>) -> BoxFuture<'a, Result<(), String>> {
        if !job.uses_containers() {
            return self.host.prepare(job);
        }
        match self.containers() {
            Ok(containers) => containers.prepare(job),
            Err(message) => Box::pin(async move { Err(message) }),
        }
    }

    fn run_step(
        &self,
        request: StepRequest,
        output: OutputSender,
        control: StepControl,
    ) -> BoxFuture<'static, StepExit> {
        if request.placement == Placement::Host {
            return self.host.run_step(request, output, control);
        }
        match self.containers() {
            Ok(containers) => containers.run_step(request, output, control),
            Err(message) => Box::pin(async move { StepExit::Infrastructure(message) }),
        }
    }

    fn cleanup<'a>(&'a self, job: &'a JobRequest<'a>) -> BoxFuture<'a, ()> {
        // A host job's `image:` steps ran in the container backend too: it
        // removes the containers of steps stopped before their removal
        // began.
        let step_images = job.job.steps.iter().any(|s| s.image.is_some());
        match &self.containers {
            Some(containers) if job.uses_containers() => containers.cleanup(job),
            Some(containers) if step_images => Box::pin(async move {
                containers.cleanup(job).await;
                self.host.cleanup(job).await;
            }),
            _ => self.host.cleanup(job),
        }
    }
}
