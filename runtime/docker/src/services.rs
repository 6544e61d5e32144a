//! `services:` sidecars: a network of the job's own, one container per
//! service reachable by its name, and the wait until each is healthy.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HealthStatusEnum, NetworkCreateRequest,
    NetworkingConfig, PortBinding,
};
use bollard::query_parameters::{CreateContainerOptions, LogsOptions};
use futures_util::StreamExt;
use kiln_engine::ServiceRequest;
use kiln_pipeline::ContainerOptions;

use crate::engine::{Engine, api};
use crate::error::{DockerError, Result};
use crate::labels::Owner;
use crate::spec;

/// How often readiness is checked.
const POLL: Duration = Duration::from_millis(100);
/// A service without a health check must keep running this long to count
/// as ready: one that crashes on start-up must fail the job, not its steps.
const SETTLE: Duration = Duration::from_millis(300);
/// Log lines shown when a service fails.
const LOG_LINES: usize = 20;

/// Creates the job's network.
pub(crate) async fn network(engine: &Engine, owner: &Owner, job: &str) -> Result<String> {
    let docker = engine.client().await?;
    let name = owner.name(job, "net");
    docker
        .create_network(NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            labels: Some(owner.labels(job)),
            ..Default::default()
        })
        .await
        .map_err(api(format!("create the network of job `{job}`")))?;
    Ok(name)
}

/// Creates and starts one service on `network`; returns its container id.
/// Its image must be there already (the caller pulls, so a stop can cut
/// the pull short).
pub(crate) async fn start(
    engine: &Engine,
    owner: &Owner,
    job: &str,
    network: &str,
    service: &ServiceRequest,
    options: &ContainerOptions,
) -> Result<String> {
    let docker = engine.client().await?;
    let mut host = spec::host_config(&ContainerOptions {
        // A service keeps its image's own user and filesystem; only the
        // limits and the hardening carry over.
        user: None,
        read_only: false,
        tmpfs: Vec::new(),
        volumes: Vec::new(),
        ..options.clone()
    });
    host.network_mode = Some(network.to_owned());
    if !service.ports.is_empty() {
        host.port_bindings = Some(
            service
                .ports
                .iter()
                .map(|(h, c)| {
                    (
                        format!("{c}/tcp"),
                        Some(vec![PortBinding {
                            host_ip: Some("127.0.0.1".into()),
                            host_port: Some(h.to_string()),
                        }]),
                    )
                })
                .collect(),
        );
    }
    let healthcheck = service.health.as_ref().map(|h| HealthConfig {
        test: Some(vec!["CMD-SHELL".into(), h.command.clone()]),
        interval: Some(nanos(h.interval)),
        timeout: Some(nanos(h.timeout)),
        retries: Some(i64::from(h.retries)),
        start_period: Some(0),
        ..Default::default()
    });
    let body = ContainerCreateBody {
        image: Some(service.image.clone()),
        env: Some(
            service
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
        ),
        cmd: (!service.command.is_empty()).then(|| service.command.clone()),
        healthcheck,
        labels: Some(owner.labels(job)),
        host_config: Some(host),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network.to_owned(),
                EndpointSettings {
                    aliases: Some(vec![service.name.clone()]),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    };
    let name = owner.name(job, &service.name);
    let created = docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name),
                ..Default::default()
            }),
            body,
        )
        .await
        .map_err(api(format!("create service `{}`", service.name)))?;
    docker
        .start_container(&created.id, None)
        .await
        .map_err(api(format!("start service `{}`", service.name)))?;
    Ok(created.id)
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Waits until the service is healthy (or just running, without a
/// check); a service that exits or turns unhealthy fails with its logs.
pub(crate) async fn wait_ready(engine: &Engine, id: &str, service: &ServiceRequest) -> Result<()> {
    let docker = engine.client().await?;
    let name = &service.name;
    // Docker itself gives up after `retries` failed checks; this bound only
    // guards against a check that never reports.
    let bound = service
        .health
        .as_ref()
        .map_or(Duration::from_secs(60), |h| {
            (h.interval + h.timeout) * (h.retries + 1) + Duration::from_secs(10)
        });
    let started = tokio::time::Instant::now();
    let deadline = started + bound;
    loop {
        let inspect = docker
            .inspect_container(id, None)
            .await
            .map_err(api(format!("inspect service `{name}`")))?;
        let state = inspect.state.unwrap_or_default();
        if state.running != Some(true) {
            let code = state.exit_code.unwrap_or(-1);
            return Err(failed(
                engine,
                id,
                format!("service `{name}` exited with code {code} before it was ready"),
                None,
            )
            .await);
        }
        match state.health.as_ref().and_then(|h| h.status) {
            None | Some(HealthStatusEnum::NONE) | Some(HealthStatusEnum::EMPTY)
                if started.elapsed() >= SETTLE =>
            {
                return Ok(());
            }
            None | Some(HealthStatusEnum::NONE) | Some(HealthStatusEnum::EMPTY) => {}
            Some(HealthStatusEnum::HEALTHY) => return Ok(()),
            Some(HealthStatusEnum::UNHEALTHY) => {
                let check = state
                    .health
                    .and_then(|h| h.log)
                    .and_then(|log| log.last().and_then(|r| r.output.clone()));
                return Err(failed(
                    engine,
                    id,
                    format!("service `{name}` is unhealthy: its health check failed"),
                    check,
                )
                .await);
            }
            Some(HealthStatusEnum::STARTING) => {}
        }
        if tokio::time::Instant::now() > deadline {
            return Err(failed(
                engine,
                id,
                format!(
                    "service `{name}` was not healthy after {}s",
                    bound.as_secs()
                ),
                None,
            )
            .await);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The error for a failed service, with the check's output and the
/// service's last log lines.
async fn failed(engine: &Engine, id: &str, headline: String, check: Option<String>) -> DockerError {
    let mut text = headline;
    if let Some(check) = check.filter(|c| !c.trim().is_empty()) {
        text.push_str(&format!("\n  last health check said: {}", check.trim()));
    }
    let lines = last_logs(engine, id).await;
    if lines.is_empty() {
        text.push_str("\n  (the service logged nothing)");
    } else {
        text.push_str(&format!("\n  its last {} log lines:", lines.len()));
        for line in lines {
            text.push_str("\n    ");
            text.push_str(&line);
        }
    }
    DockerError::Service(text)
}

async fn last_logs(engine: &Engine, id: &str) -> Vec<String> {
    let Ok(docker) = engine.client().await else {
        return Vec::new();
    };
    let mut stream = docker.logs(
        id,
        Some(LogsOptions {
            stdout: true,
            stderr: true,
            tail: LOG_LINES.to_string(),
            ..Default::default()
        }),
    );
    let mut text = String::new();
    while let Some(Ok(log)) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&log.into_bytes()));
    }
    text.lines().map(str::to_owned).collect()
}
