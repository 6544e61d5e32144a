//! After a crash, and by hand: `kiln deploy resume` finishes what a dead
//! controller left (a decided promotion, else a rollback, never a promotion
//! it had not decided) and stops strays; `kiln deploy rollback` switches a
//! service back to its previous version; `kiln deploy stop` removes a
//! service. Also the proxy process's lifecycle.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rustix::process::Signal;

use crate::controller::{Controller, Outcome, Rollout};
use crate::error::{DeployError, Result};
use crate::journal::{Journal, ProxyRecord, RolloutRecord, ServiceLock};
use crate::platform::{self, InstanceHandle, Strays};
use crate::proxy::ProxyClient;
use crate::spec::RolloutSettings;

/// Finishes every unfinished rollout of `service` (or of every service).
/// A rollout whose controller is still alive is left alone (its lock is
/// held) and reported as [`DeployError::Busy`].
pub async fn resume(c: &Controller<'_>, record: &RolloutRecord) -> Result<Outcome> {
    let _lock = ServiceLock::acquire(c.journal, &record.service)?;
    stop_strays(c, &record.service).await?;
    let service = c.journal.service(&record.service)?;
    let mut rollout = Rollout::new(
        c,
        record.id,
        record.spec.clone(),
        record.settings.clone(),
        record.stable.clone(),
        service
            .stable_spec
            .filter(|s| Some(&s.version) == record.stable.as_ref()),
    )
    .await?;
    c.journal.event(
        record.id,
        "effect",
        &serde_json::json!({ "resumed-from": &record.status }),
    )?;
    if record.status == "promoting" {
        (c.log)(&format!(
            "rollout {}: the promotion of `{}` had been decided; finishing it",
            record.id, record.candidate
        ));
        rollout.finish_promotion().await?;
        return Ok(Outcome::Promoted);
    }
    (c.log)(&format!(
        "rollout {}: kiln stopped while it was {}; rolling back",
        record.id, record.status
    ));
    let reason = record
        .reason
        .clone()
        .filter(|_| record.status == "rolling-back")
        .unwrap_or_else(|| {
            "kiln stopped during the rollout (resumed by `kiln deploy resume`)".into()
        });
    rollout.rollback(&reason).await
}

/// Stops what the journal does not hold as live: instances recorded as
/// `starting` (spawned, or about to be, by a controller that died before
/// recording their handle) and anything else the platform finds of the
/// service (containers by their labels).
async fn stop_strays(c: &Controller<'_>, service: &str) -> Result<()> {
    let starting: Vec<String> = c
        .journal
        .starting_instances(service)?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let live: Vec<InstanceHandle> = c
        .journal
        .live_instances(service)?
        .into_iter()
        .map(|i| i.handle)
        .collect();
    let strays = Strays {
        service,
        starting: &starting,
        live: &live,
    };
    c.platform.stop_strays(&strays).await?;
    for name in &starting {
        c.journal.instance_stopped(name)?;
    }
    Ok(())
}

/// The rollout that last promoted a version other than `stable`: what
/// [`rollback_service`] restores (its spec, and its health check).
pub fn rollback_source(journal: &Journal, service: &str, stable: &str) -> Result<RolloutRecord> {
    journal
        .history(service)?
        .into_iter()
        .filter(|r| r.status == "promoted" && r.candidate != stable)
        .find(|r| !r.spec.service.is_empty())
        .ok_or_else(|| {
            DeployError::NotFound(format!(
                "service `{service}` has no earlier version to roll back to (only `{stable}` was ever promoted)"
            ))
        })
}

/// Switches `service` back to the version that served before the current
/// one: starts it, checks it, moves all traffic at once, removes the
/// current version. If the old version is not healthy, the current one
/// keeps serving.
pub async fn rollback_service(c: &Controller<'_>, service: &str, run: i64) -> Result<Outcome> {
    let _lock = ServiceLock::acquire(c.journal, service)?;
    let current = c.journal.service(service)?;
    let (Some(stable), Some(stable_spec)) = (current.stable.clone(), current.stable_spec.clone())
    else {
        return Err(DeployError::NotFound(format!(
            "service `{service}` has no serving version"
        )));
    };
    let previous = rollback_source(c.journal, service, &stable)?;
    let settings = RolloutSettings {
        run,
        strategy: "manual rollback".into(),
        strategy_params: Vec::new(),
        health: previous.settings.health.clone(),
        health_digest: previous.settings.health_digest.clone(),
        manual_approval: false,
        approval_timeout: Duration::from_secs(1),
        listen: previous.settings.listen,
        sticky: previous.settings.sticky.clone(),
    };
    let spec = previous.spec.clone();
    let id = c.journal.begin(&spec, &settings, Some(&stable))?;
    (c.log)(&format!(
        "rollout {id}: rolling `{service}` back from `{stable}` to `{}`",
        spec.version
    ));
    let mut rollout = Rollout::new(
        c,
        id,
        spec.clone(),
        settings,
        Some(stable),
        Some(stable_spec),
    )
    .await?;
    for _ in 0..spec.replicas {
        if let Err(e) = rollout.start(&spec).await {
            return rollout.rollback(&e.to_string()).await;
        }
    }
    rollout.check_health().await?;
    if rollout
        .table()
        .backends
        .iter()
        .filter(|b| b.version == spec.version)
        .count()
        < spec.replicas as usize
    {
        return rollout
            .rollback(&format!("version `{}` is not healthy", spec.version))
            .await;
    }
    c.journal.set_status(id, "promoting", None)?;
    rollout.finish_promotion().await?;
    Ok(Outcome::Promoted)
}

/// Stops every instance of `service` and its proxy, and forgets its
/// stable version.
pub async fn stop_service(c: &Controller<'_>, service: &str) -> Result<usize> {
    let _lock = ServiceLock::acquire(c.journal, service)?;
    stop_strays(c, service).await?;
    let mut stopped = 0;
    for instance in c.journal.live_instances(service)? {
        c.platform.stop(&instance.handle, c.tuning.grace).await?;
        c.journal.instance_stopped(&instance.name)?;
        stopped += 1;
    }
    if let Some(proxy) = c.journal.service(service)?.proxy {
        stop_proxy(&proxy).await;
        c.journal.set_proxy(service, None)?;
    }
    c.journal.set_stable(service, None)?;
    Ok(stopped)
}

async fn stop_proxy(proxy: &ProxyRecord) {
    if let InstanceHandle::Process { pid, start_time } = proxy.handle
        && platform::group_alive(pid, start_time)
    {
        {
            platform::kill_group(pid, Signal::TERM);
            for _ in 0..100 {
                if !platform::group_alive(pid, start_time) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            platform::kill_group(pid, Signal::KILL);
        }
    }
    let _ = std::fs::remove_file(&proxy.socket);
}

/// How to start a proxy process: the CLI's own binary with its hidden
/// `deploy proxy` subcommand, given the listener and control socket.
pub type ProxyLauncher = dyn Fn(SocketAddr, &Path) -> std::process::Command + Send + Sync;

/// The running proxy of `service` on `listen`, started (or restarted on a
/// new address) if needed. The proxy outlives this process: it is the
/// service's front door between rollouts.
pub async fn ensure_proxy(
    journal: &Journal,
    service: &str,
    listen: SocketAddr,
    launch: &ProxyLauncher,
) -> Result<ProxyClient> {
    if let Some(proxy) = journal.service(service)?.proxy {
        let alive = match proxy.handle {
            InstanceHandle::Process { pid, start_time } => platform::group_alive(pid, start_time),
            InstanceHandle::Container { .. } => false,
        };
        if alive && proxy.listen == listen {
            let client = ProxyClient::new(service, &proxy.socket);
            if client.wait_up(Duration::from_secs(1)).await.is_ok() {
                return Ok(client);
            }
        }
        stop_proxy(&proxy).await;
    }
    let socket = journal.deploy_dir().join(format!("{service}.sock"));
    let log = journal
        .deploy_dir()
        .join("logs")
        .join(format!("{service}-proxy.log"));
    std::fs::create_dir_all(journal.deploy_dir().join("logs"))
        .map_err(|e| DeployError::io("create", journal.deploy_dir().join("logs"), e))?;
    let log_file = std::fs::File::create(&log).map_err(|e| DeployError::io("create", &log, e))?;
    let mut cmd = launch(listen, &socket);
    {
        use std::os::unix::process::CommandExt;
        cmd.stdin(Stdio::null())
            .stdout(
                log_file
                    .try_clone()
                    .map_err(|e| DeployError::io("open", &log, e))?,
            )
            .stderr(log_file)
            .process_group(0);
    }
    let child = cmd.spawn().map_err(|e| DeployError::Proxy {
        service: service.to_owned(),
        message: format!("cannot start the proxy process: {e}"),
    })?;
    let pid = child.id() as i32;
    // Reaped by nobody once kiln exits (init adopts it); while kiln runs
    // it must not become a zombie if it dies, so a thread waits for it.
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    let start_time = platform::proc_start_time(pid).unwrap_or(0);
    let record = ProxyRecord {
        listen,
        socket: socket.clone(),
        handle: InstanceHandle::Process { pid, start_time },
    };
    journal.set_proxy(service, Some(&record))?;
    let client = ProxyClient::new(service, &socket);
    // Up within 5 s, and a proxy that exits (a taken port) fails at once.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut up = Err(());
    while std::time::Instant::now() < deadline {
        if client.wait_up(Duration::from_millis(50)).await.is_ok() {
            up = Ok(());
            break;
        }
        if !platform::group_alive(pid, start_time) {
            // Let the waiter thread reap it and the log settle.
            tokio::time::sleep(Duration::from_millis(20)).await;
            break;
        }
    }
    up.map_err(|()| {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        DeployError::Proxy {
            service: service.to_owned(),
            message: format!(
                "it did not come up on {listen}: {}",
                match text.split_whitespace().collect::<Vec<_>>().join(" ") {
                    t if t.is_empty() => "no output".to_owned(),
                    t => t,
                }
            ),
        }
    })?;
    Ok(client)
}
