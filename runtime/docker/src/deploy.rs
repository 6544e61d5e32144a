//! The `docker` deployment target: [`DockerPlatform`], kiln-deploy's
//! [`Platform`] over the Docker engine.
//!
//! An instance is one container of the service's image, hardened like a
//! job container ([`crate::spec::host_config`]), its port published on a
//! loopback port Docker picks, labelled with the state directory and the
//! instance ([`labels`]), so a `kiln` that never saw it can find it.
//! Deployed containers carry no `kiln.run` label: they outlive runs, and
//! the sweeps of finished runs (`kiln gc`) never touch them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, LogsOptions, StopContainerOptions,
};
use futures_util::StreamExt;
use kiln_deploy::platform::{Instance, InstanceHandle, InstanceSpec, Platform, Strays};
use kiln_deploy::spec::RunSpec;
use kiln_deploy::{BoxFuture, DeployError};
use kiln_pipeline::{ContainerOptions, PullPolicy};
use tokio::io::AsyncWriteExt;

use crate::engine::{Engine, api, is_not_found};
use crate::error::{DockerError, Result, one_line};
use crate::labels;
use crate::{gc, image, spec};

/// How long a stopped instance's log follower may take to write the rest.
const LOG_DRAIN: Duration = Duration::from_secs(1);

/// Service instances as containers.
///
/// While the `kiln` that started an instance runs, the instance's output
/// is copied into its log file as it comes; when any `kiln` stops it, the
/// file is rewritten with the whole log Docker kept, so it is complete
/// however many `kiln` processes the instance outlived.
pub struct DockerPlatform {
    engine: Arc<Engine>,
    state: String,
    /// Log followers of the containers this process started, by id.
    followers: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
}

impl DockerPlatform {
    /// Instances on `engine`, labelled as belonging to the state directory
    /// `state` (its canonical path, as in [`labels::STATE`]).
    pub fn new(engine: Arc<Engine>, state: String) -> Self {
        Self {
            engine,
            state,
            followers: Mutex::new(HashMap::new()),
        }
    }

    /// Fails unless the engine answers and `image` is present (pulled if
    /// missing and a registry has it): a deploy job checks this before its
    /// rollout begins, so a missing engine or image is one clear error,
    /// not a rollback.
    pub async fn check(&self, image: &str) -> Result<()> {
        self.engine.client().await?;
        image::ensure(&self.engine, image, PullPolicy::IfMissing).await
    }

    async fn start_instance(&self, spec: &InstanceSpec) -> Result<Instance> {
        let RunSpec::Image(image) = &spec.service.run else {
            return Err(DockerError::Refused(
                "the `docker` target runs an `image`, not a `command`".into(),
            ));
        };
        image::ensure(&self.engine, image, PullPolicy::IfMissing).await?;
        let port = match spec.service.port {
            Some(port) => port,
            None => exposed_port(&self.engine, image).await?,
        };
        let docker = self.engine.client().await?;
        let body = self.container(spec, image, port);
        let name = format!("kiln-deploy-{}-{:08x}", spec.name, fastrand::u32(..));
        let created = docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name),
                    ..Default::default()
                }),
                body,
            )
            .await
            .map_err(api(format!("create a container of `{image}`")))?;
        let id = created.id;
        let published = async {
            docker
                .start_container(&id, None)
                .await
                .map_err(api(format!("start the container of `{image}`")))?;
            published_port(docker, &id, port).await
        };
        let host_port = match published.await {
            Ok(p) => p,
            Err(e) => {
                // Nothing half-made stays behind; the start's error is the
                // one worth telling.
                let _ = gc::remove_container(&self.engine, &id).await;
                return Err(e);
            }
        };
        self.follow_logs(docker.clone(), &id, spec.log.clone());
        Ok(Instance {
            name: spec.name.clone(),
            version: spec.service.version.clone(),
            host: "127.0.0.1".into(),
            port: host_port,
            handle: InstanceHandle::Container { id },
        })
    }

    /// The create body: the service's env and kiln's, the port published
    /// on loopback only, labels, and the job containers' hardening.
    fn container(&self, spec: &InstanceSpec, image: &str, port: u16) -> ContainerCreateBody {
        let service = &spec.service;
        let mut env: Vec<String> = service
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        env.extend([
            format!("PORT={port}"),
            format!("KILN_DEPLOY_SERVICE={}", service.service),
            format!("KILN_DEPLOY_VERSION={}", service.version),
            format!("KILN_DEPLOY_INSTANCE={}", spec.name),
            format!("KILN_DEPLOY_ROLLOUT={}", spec.rollout),
        ]);
        let labels = HashMap::from([
            (labels::STATE.to_owned(), self.state.clone()),
            (labels::DEPLOY_SERVICE.to_owned(), service.service.clone()),
            (labels::DEPLOY_VERSION.to_owned(), service.version.clone()),
            (labels::DEPLOY_ROLLOUT.to_owned(), spec.rollout.to_string()),
            (labels::DEPLOY_INSTANCE.to_owned(), spec.name.clone()),
            (
                labels::DEPLOY_LOG.to_owned(),
                spec.log.display().to_string(),
            ),
        ]);
        // A service keeps its image's user and filesystem, as `services:`
        // sidecars do; the limits and the hardening are a job's.
        let mut host = spec::host_config(&ContainerOptions::default());
        host.network_mode = Some("bridge".into());
        let exposed = format!("{port}/tcp");
        host.port_bindings = Some(HashMap::from([(
            exposed.clone(),
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                // Empty: Docker picks a free port and keeps it, where a
                // port kiln probed could be taken before the bind.
                host_port: Some(String::new()),
            }]),
        )]));
        ContainerCreateBody {
            image: Some(image.to_owned()),
            env: Some(env),
            exposed_ports: Some(vec![exposed]),
            labels: Some(labels),
            host_config: Some(host),
            ..Default::default()
        }
    }

    /// Appends the container's output to its log file while this process
    /// runs; the stream ends when the container stops.
    fn follow_logs(&self, docker: Docker, id: &str, log: PathBuf) {
        let container = id.to_owned();
        let follower = tokio::spawn(async move {
            if let Ok(file) = open_log(&log, false).await {
                copy_logs(&docker, &container, true, file).await;
            }
        });
        self.followers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), follower);
    }

    /// Stops a container (SIGTERM, SIGKILL after `grace`), completes its
    /// log file, removes it. One already gone is fine.
    async fn stop_instance(&self, id: &str, grace: Duration) -> Result<()> {
        let docker = self.engine.client().await?;
        let seconds = i32::try_from(grace.as_secs() + u64::from(grace.subsec_nanos() > 0))
            .unwrap_or(i32::MAX);
        let options = StopContainerOptions {
            t: Some(seconds),
            ..Default::default()
        };
        match docker.stop_container(id, Some(options)).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => return Ok(()),
            // 304: it had stopped already.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => {}
            Err(e) => return Err(api(format!("stop container `{id}`"))(e)),
        }
        let follower = self
            .followers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        match follower {
            Some(follower) => {
                let _ = tokio::time::timeout(LOG_DRAIN, follower).await;
            }
            None => save_log(docker, id).await,
        }
        gc::remove_container(&self.engine, id).await
    }

    async fn running(&self, id: &str) -> bool {
        let Ok(docker) = self.engine.client().await else {
            return false;
        };
        match docker.inspect_container(id, None).await {
            Ok(inspect) => inspect.state.and_then(|s| s.running).unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Every container of the service in this state directory that is not
    /// live in the journal. No engine means no containers to stop.
    async fn stop_unrecorded(&self, strays: &Strays<'_>) -> Result<usize> {
        let docker = match self.engine.client().await {
            Ok(docker) => docker,
            Err(DockerError::Unavailable { address, cause }) => {
                tracing::debug!(address, cause, "no Docker engine: no containers to sweep");
                return Ok(0);
            }
            Err(e) => return Err(e),
        };
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![
                format!("{}={}", labels::STATE, self.state),
                format!("{}={}", labels::DEPLOY_SERVICE, strays.service),
            ],
        )]);
        let containers = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(api(format!(
                "list the containers of service `{}`",
                strays.service
            )))?;
        let live: Vec<&str> = strays
            .live
            .iter()
            .filter_map(|h| match h {
                InstanceHandle::Container { id } => Some(id.as_str()),
                InstanceHandle::Process { .. } => None,
            })
            .collect();
        let mut stopped = 0;
        for id in containers.iter().filter_map(|c| c.id.as_deref()) {
            if !live.contains(&id) {
                self.stop_instance(id, Duration::ZERO).await?;
                stopped += 1;
            }
        }
        Ok(stopped)
    }
}

impl Platform for DockerPlatform {
    fn start<'a>(&'a self, spec: &'a InstanceSpec) -> BoxFuture<'a, kiln_deploy::Result<Instance>> {
        Box::pin(async move {
            self.start_instance(spec)
                .await
                .map_err(|e| DeployError::Start {
                    instance: spec.name.clone(),
                    message: one_line(&e),
                })
        })
    }

    fn stop<'a>(
        &'a self,
        handle: &'a InstanceHandle,
        grace: Duration,
    ) -> BoxFuture<'a, kiln_deploy::Result<()>> {
        Box::pin(async move {
            let InstanceHandle::Container { id } = handle else {
                return Err(DeployError::Invalid(
                    "the `docker` target cannot stop a process".into(),
                ));
            };
            self.stop_instance(id, grace)
                .await
                .map_err(|e| DeployError::Target {
                    target: "docker",
                    message: one_line(&e),
                })
        })
    }

    fn alive<'a>(&'a self, handle: &'a InstanceHandle) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            match handle {
                InstanceHandle::Container { id } => self.running(id).await,
                InstanceHandle::Process { .. } => false,
            }
        })
    }

    fn stop_strays<'a>(
        &'a self,
        strays: &'a Strays<'a>,
    ) -> BoxFuture<'a, kiln_deploy::Result<usize>> {
        Box::pin(async move {
            self.stop_unrecorded(strays)
                .await
                .map_err(|e| DeployError::Target {
                    target: "docker",
                    message: one_line(&e),
                })
        })
    }
}

/// The one port `image` exposes, for a deployment without `port:`.
async fn exposed_port(engine: &Engine, image: &str) -> Result<u16> {
    let docker = engine.client().await?;
    let inspect = docker
        .inspect_image(image)
        .await
        .map_err(api(format!("inspect image `{image}`")))?;
    let exposed = inspect
        .config
        .and_then(|c| c.exposed_ports)
        .unwrap_or_default();
    let tcp: Vec<u16> = exposed
        .iter()
        .filter_map(|p| p.strip_suffix("/tcp")?.parse().ok())
        .collect();
    match tcp[..] {
        [port] => Ok(port),
        _ => Err(DockerError::Refused(format!(
            "image `{image}` exposes {} TCP ports; say which one the service listens on with `port:`",
            if tcp.is_empty() {
                "no".to_owned()
            } else {
                format!("{} ({})", tcp.len(), exposed.join(", "))
            }
        ))),
    }
}

/// The loopback port Docker published `port` of a started container on.
async fn published_port(docker: &Docker, id: &str, port: u16) -> Result<u16> {
    let inspect = docker
        .inspect_container(id, None)
        .await
        .map_err(api(format!("inspect container `{id}`")))?;
    inspect
        .network_settings
        .and_then(|n| n.ports)
        .and_then(|ports| ports.get(&format!("{port}/tcp")).cloned().flatten())
        .and_then(|bindings| {
            bindings
                .iter()
                .find_map(|b| b.host_port.as_deref()?.parse().ok())
        })
        .ok_or_else(|| {
            DockerError::Refused(format!(
                "docker did not publish port {port} of container `{id}` on the host"
            ))
        })
}

/// Rewrites the container's log file with its whole log, from wherever
/// its `kiln.deploy.log` label says. Best effort: the container's removal
/// does not wait on a log.
async fn save_log(docker: &Docker, id: &str) {
    let Ok(inspect) = docker.inspect_container(id, None).await else {
        return;
    };
    let Some(path) = inspect
        .config
        .and_then(|c| c.labels)
        .and_then(|mut l| l.remove(labels::DEPLOY_LOG))
    else {
        return;
    };
    let path = PathBuf::from(path);
    let Ok(file) = open_log(&path, true).await else {
        tracing::warn!(path = %path.display(), "cannot write an instance's log");
        return;
    };
    copy_logs(docker, id, false, file).await;
}

/// Copies the container's stdout and stderr into `file`: what it has
/// written so far, and with `follow` what it writes until it stops.
async fn copy_logs(docker: &Docker, id: &str, follow: bool, mut file: tokio::fs::File) {
    let mut logs = docker.logs(
        id,
        Some(LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            ..Default::default()
        }),
    );
    while let Some(Ok(chunk)) = logs.next().await {
        if file.write_all(&chunk.into_bytes()).await.is_err() {
            return;
        }
    }
}

async fn open_log(path: &std::path::Path, truncate: bool) -> std::io::Result<tokio::fs::File> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(!truncate)
        .truncate(truncate)
        .open(path)
        .await
}
