//! [`DockerExecutor`]: the engine's [`Executor`] for container work.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bollard::query_parameters::CreateContainerOptions;
use kiln_engine::executor::{BoxFuture, OutputSender};
use kiln_engine::{
    ContainerRequest, Executor, JobRequest, Placement, StepControl, StepExit, StepRequest,
};
use kiln_pipeline::{ContainerOptions, StepAction};

use crate::engine::{Engine, api};
use crate::error::{DockerError, Result, one_line};
use crate::labels::Owner;
use crate::scratch::Scratch;
use crate::spec::{self, Mounts};
use crate::{gc, image, services, step};

/// Keeps a job container alive between its steps' execs. `sleep` is in
/// every image that has a shell; PID 1 is Docker's init, which reaps.
const KEEPER: [&str; 2] = ["sleep", "2147483647"];

/// Runs `image:` jobs and steps and `services:` in Docker.
///
/// A job with `image:` gets one container per attempt, created in
/// [`Executor::prepare`] and removed in [`Executor::cleanup`]; its steps
/// are execs in it, so files and processes carry over between steps. A
/// step with `image:` (and the one step of a one-step `image:` job) gets a
/// container of its own, which is removed in the background once its exit
/// is known, so the removal overlaps the rest of the run:
/// [`DockerExecutor::settle`] waits for those removals, and whoever runs
/// the engine calls it before the run ends. Everything carries the
/// [`Owner`]'s labels, for [`crate::sweep`].
#[derive(Clone)]
pub struct DockerExecutor(Arc<Inner>);

impl DockerExecutor {
    /// An executor on `engine` labelling everything with `owner`.
    pub fn new(engine: Arc<Engine>, owner: Owner) -> Self {
        Self(Arc::new(Inner {
            engine,
            owner,
            jobs: Mutex::new(HashMap::new()),
            step_containers: Mutex::new(Vec::new()),
        }))
    }

    /// Waits until every step container is gone: the background removals
    /// started when steps ended, and any container whose step never got
    /// that far (its future was dropped). Call it once the engine is done.
    pub async fn settle(&self) {
        self.0.settle(None).await;
    }
}

/// A step's own container and, once its step ended, its removal.
struct StepContainer {
    job: String,
    id: String,
    removal: Option<tokio::task::JoinHandle<()>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

struct Inner {
    engine: Arc<Engine>,
    owner: Owner,
    jobs: Mutex<HashMap<String, JobState>>,
    /// Step containers not yet known removed (see [`DockerExecutor::settle`]).
    step_containers: Mutex<Vec<StepContainer>>,
}

/// What one job attempt created so far (cleanup removes exactly this).
#[derive(Default)]
struct JobState {
    container: Option<String>,
    /// A one-step job's container, created by its step (see `prepare_job`).
    deferred: Option<ContainerRequest>,
    user: Option<String>,
    network: Option<String>,
    services: Vec<String>,
    scratch: Option<Scratch>,
}

/// A step's scratch directory: its own (removed with it) or its job's.
struct ScratchDir {
    _owned: Option<Scratch>,
    path: PathBuf,
}

impl Inner {
    fn update(&self, job: &str, change: impl FnOnce(&mut JobState)) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        change(jobs.entry(job.to_owned()).or_default());
    }

    async fn prepare_job(&self, request: &JobRequest<'_>) -> Result<()> {
        let job = &request.job.name;
        let stop = &request.stop;
        self.update(job, |_| {});
        self.engine.client().await?;
        let scratch = Scratch::new()?;
        let kiln_dir = scratch.inner.clone();
        self.update(job, |s| s.scratch = Some(scratch));
        let options = request
            .container
            .as_ref()
            .map_or(&request.job.container, |c| &c.options);
        let mut network = None;
        if !request.services.is_empty() {
            // Every image first: a pull is the long wait that a stop cuts
            // short, and nothing is created before they are all there.
            for service in &request.services {
                until_stopped(
                    stop,
                    image::ensure(&self.engine, &service.image, options.pull),
                )
                .await?;
            }
            let name = services::network(&self.engine, &self.owner, job).await?;
            self.update(job, |s| s.network = Some(name.clone()));
            let mut ids = Vec::new();
            for service in &request.services {
                let id = services::start(&self.engine, &self.owner, job, &name, service, options)
                    .await?;
                self.update(job, |s| s.services.push(id.clone()));
                ids.push(id);
            }
            let waits = ids
                .iter()
                .zip(&request.services)
                .map(|(id, service)| services::wait_ready(&self.engine, id, service));
            until_stopped(stop, futures_util::future::try_join_all(waits)).await?;
            network = Some(name);
        }
        let Some(container) = &request.container else {
            return Ok(());
        };
        // Steps with an `image:` of their own do not use the job's
        // container: when none is left to use it, it is neither pulled nor
        // created.
        let users = request
            .job
            .steps
            .iter()
            .filter(|s| s.image.is_none() && matches!(s.action, StepAction::Run { .. }))
            .count();
        if users == 0 {
            return Ok(());
        }
        // A container serving one step is created by that step, whose create
        // finds out whether the image is missing (saving an inspect); so
        // only `always` pulls here then.
        if users > 1 || container.options.pull == kiln_pipeline::PullPolicy::Always {
            until_stopped(
                stop,
                image::ensure(&self.engine, &container.image, container.options.pull),
            )
            .await?;
        }
        // Pulled (if at all) just above, not again per container.
        let pulled = ContainerRequest {
            options: ContainerOptions {
                pull: match container.options.pull {
                    kiln_pipeline::PullPolicy::Always => kiln_pipeline::PullPolicy::IfMissing,
                    other => other,
                },
                ..container.options.clone()
            },
            ..container.clone()
        };
        // A job whose container serves one step has no state to carry
        // between steps: that step runs as the container's main process,
        // as `docker run` would, which saves the keeper and the exec
        // (~130 ms here).
        if users == 1 {
            self.update(job, |s| s.deferred = Some(pulled));
            return Ok(());
        }
        let id = self
            .create(
                job,
                "job",
                &pulled,
                &Mounts {
                    workspace: &request.workspace,
                    kiln_dir: &kiln_dir,
                    network: network.as_deref(),
                },
                KEEPER.iter().map(|s| (*s).to_owned()).collect(),
                None,
                stop,
            )
            .await?;
        self.update(job, |s| {
            s.container = Some(id.clone());
            s.user = container.options.user.clone();
        });
        let docker = self.engine.client().await?;
        docker
            .start_container(&id, None)
            .await
            .map_err(api(format!("start the container of job `{job}`")))?;
        Ok(())
    }

    /// Creates a hardened container, pulling its image as allowed: first
    /// for `always`, else only when the create says it is missing (no
    /// inspect on the way of every container). A pull (minutes, perhaps)
    /// ends when `stop` fires; the create itself is never cut short.
    #[allow(clippy::too_many_arguments)]
    async fn create(
        &self,
        job: &str,
        what: &str,
        container: &ContainerRequest,
        mounts: &Mounts<'_>,
        cmd: Vec<String>,
        step: Option<&step::Prepared>,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Result<String> {
        let policy = container.options.pull;
        if policy == kiln_pipeline::PullPolicy::Always {
            until_stopped(stop, image::ensure(&self.engine, &container.image, policy)).await?;
        }
        let mut body = spec::step_container(
            &container.image,
            &container.options,
            mounts,
            self.owner.labels(job),
            cmd,
        )?
        .0;
        if let Some(step) = step {
            body.env = Some(step.env.clone());
            body.working_dir = Some(step.workdir.clone());
        }
        let docker = self.engine.client().await?;
        let options = CreateContainerOptions {
            name: Some(self.owner.name(job, what)),
            ..Default::default()
        };
        let failed = api(format!(
            "create a container of `{}` for job `{job}`",
            container.image
        ));
        let created = match docker
            .create_container(Some(options.clone()), body.clone())
            .await
        {
            Err(e) if image::is_missing(&e) => {
                until_stopped(
                    stop,
                    image::provide_missing(&self.engine, &container.image, policy),
                )
                .await?;
                docker.create_container(Some(options), body).await
            }
            other => other,
        }
        .map_err(failed)?;
        Ok(created.id)
    }

    async fn cleanup_job(&self, job: &str) {
        self.remove_abandoned(job).await;
        let state = {
            let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
            jobs.remove(job)
        };
        let Some(state) = state else { return };
        if state.network.is_some() {
            // The job's step containers joined its network, which cannot
            // go while they exist: their removals first.
            self.settle(Some(job)).await;
        }
        let containers = state.container.iter().chain(&state.services);
        let removals = containers.map(|id| gc::remove_container(&self.engine, id));
        for result in futures_util::future::join_all(removals).await {
            if let Err(e) = result {
                tracing::warn!(job, error = %one_line(&e), "cannot remove a container");
            }
        }
        if let Some(network) = &state.network
            && let Ok(docker) = self.engine.client().await
            && let Err(e) = docker.remove_network(network).await
        {
            tracing::warn!(job, network, error = %e, "cannot remove a network");
        }
    }

    async fn step(
        self: Arc<Self>,
        request: StepRequest,
        output: OutputSender,
        control: StepControl,
    ) -> Result<StepExit> {
        let (container, user, network, deferred) = {
            let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
            let state = jobs.get(&request.job);
            (
                state.and_then(|s| s.container.clone()),
                state.and_then(|s| s.user.clone()),
                state.and_then(|s| s.network.clone()),
                state.and_then(|s| s.deferred.clone()),
            )
        };
        let placement = match (&request.placement, deferred) {
            (Placement::JobContainer, Some(deferred)) => Placement::Container(deferred),
            (placement, _) => placement.clone(),
        };
        match &placement {
            Placement::Host => Err(DockerError::Refused(
                "a host step was routed to the container executor".into(),
            )),
            Placement::JobContainer => {
                let (Some(container), Some(dir)) = (container, self.kiln_dir(&request.job)) else {
                    return Err(DockerError::Refused(format!(
                        "job `{}` has no container (was it prepared?)",
                        request.job
                    )));
                };
                let prepared = step::prepare(&request, &dir)?;
                let exit = step::exec(
                    &self.engine,
                    &container,
                    user,
                    &prepared,
                    output.clone(),
                    &control,
                )
                .await;
                step::deliver_outputs(&prepared);
                exit
            }
            Placement::Container(spec) => {
                // The job's scratch directory when it has one, else the step's own.
                let scratch = match self.kiln_dir(&request.job) {
                    Some(_) => None,
                    None => Some(Scratch::new()?),
                };
                let dir = match &scratch {
                    Some(s) => s.inner.clone(),
                    None => self.kiln_dir(&request.job).unwrap_or_default(),
                };
                let scratch = ScratchDir {
                    _owned: scratch,
                    path: dir,
                };
                let prepared = step::prepare(&request, &scratch.path)?;
                let mounts = Mounts {
                    workspace: &request.workspace,
                    kiln_dir: &scratch.path,
                    network: network.as_deref(),
                };
                let what = format!("step{}", request.step + 1);
                // No inspect first: the create says whether the image is
                // missing, and pulls (stoppable) as the policy allows.
                let id = self
                    .create(
                        &request.job,
                        &what,
                        spec,
                        &mounts,
                        prepared.cmd.clone(),
                        Some(&prepared),
                        &control.stop,
                    )
                    .await?;
                lock(&self.step_containers).push(StepContainer {
                    job: request.job.clone(),
                    id: id.clone(),
                    removal: None,
                });
                let exit = step::own_container(&self.engine, &id, output.clone(), &control).await;
                step::deliver_outputs(&prepared);
                // The exit is what the step waits for; the removal (tens of
                // ms) goes on beside the engine's bookkeeping. `settle`
                // (and a job's cleanup, when it has a network) waits for it.
                let this = self.clone();
                let removing = id.clone();
                let task = tokio::spawn(async move { this.remove_step_container(&removing).await });
                if let Some(container) = lock(&self.step_containers).iter_mut().find(|c| c.id == id)
                {
                    container.removal = Some(task);
                }
                exit
            }
        }
    }

    /// Removes a step's container, trying twice: a removal racing the
    /// daemon's own exit handling can fail once. What still fails is left
    /// to `kiln gc` (the container carries the run's labels).
    async fn remove_step_container(&self, id: &str) {
        if gc::remove_container(&self.engine, id).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        if let Err(e) = gc::remove_container(&self.engine, id).await {
            tracing::warn!(error = %one_line(&e), "cannot remove a step container; `kiln gc` will");
        }
    }

    /// Removes the step containers of `job` whose step future was dropped
    /// before their removal began (a stopped or timed-out job): they may
    /// still be running, so they go now, not at the end of the run.
    async fn remove_abandoned(&self, job: &str) {
        let abandoned: Vec<StepContainer> = {
            let mut all = lock(&self.step_containers);
            let (abandoned, others) = std::mem::take(&mut *all)
                .into_iter()
                .partition(|c| c.job == job && c.removal.is_none());
            *all = others;
            abandoned
        };
        let removals = abandoned
            .iter()
            .map(|container| self.remove_step_container(&container.id));
        futures_util::future::join_all(removals).await;
    }

    /// [`DockerExecutor::settle`] for the step containers of `job`, or of
    /// every job.
    async fn settle(&self, job: Option<&str>) {
        let pending: Vec<StepContainer> = {
            let mut all = lock(&self.step_containers);
            let (settling, others) = std::mem::take(&mut *all)
                .into_iter()
                .partition(|c| job.is_none_or(|job| c.job == job));
            *all = others;
            settling
        };
        let removals = pending.into_iter().map(|container| async move {
            match container.removal {
                Some(task) => {
                    let _ = task.await;
                }
                // Its step never ended (the future was dropped).
                None => self.remove_step_container(&container.id).await,
            }
        });
        futures_util::future::join_all(removals).await;
    }

    fn kiln_dir(&self, job: &str) -> Option<PathBuf> {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.get(job)?.scratch.as_ref().map(|s| s.inner.clone())
    }
}

/// `work`, unless `stop` is cancelled first: then [`DockerError::Stopped`].
/// Only for waits whose future may be dropped half-way without leaving
/// anything untracked (pulls, health polls), never around a create.
async fn until_stopped<T>(
    stop: &tokio_util::sync::CancellationToken,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        result = work => result,
        _ = stop.cancelled() => Err(DockerError::Stopped),
    }
}

impl Executor for DockerExecutor {
    fn prepare<'a>(&'a self, job: &'a JobRequest<'a>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.0.prepare_job(job).await.map_err(|e| one_line(&e)) })
    }

    fn run_step(
        &self,
        request: StepRequest,
        output: OutputSender,
        control: StepControl,
    ) -> BoxFuture<'static, StepExit> {
        // The step's future owns the executor's state ('static futures).
        let this = self.0.clone();
        let memory = match &request.placement {
            Placement::Container(c) => Some(c.options.resources.memory),
            _ => None,
        };
        Box::pin(async move {
            let note = output.clone();
            let stop = control.stop.clone();
            match this.step(request, output, control).await {
                Ok(StepExit::Exited(137)) if !stop.is_cancelled() => {
                    let limit = memory.map_or_else(String::new, |m| format!(" of {} MiB", m >> 20));
                    let _ = note.send((
                        kiln_engine::Stream::Stderr,
                        format!("kiln: the step was killed (SIGKILL, exit 137); in a container that is usually the memory limit{limit} (`resources.memory`)\n").into_bytes(),
                    ));
                    StepExit::Exited(137)
                }
                Ok(exit) => exit,
                Err(e) => StepExit::Infrastructure(one_line(&e)),
            }
        })
    }

    fn cleanup<'a>(&'a self, job: &'a JobRequest<'a>) -> BoxFuture<'a, ()> {
        Box::pin(self.0.cleanup_job(&job.job.name))
    }
}
