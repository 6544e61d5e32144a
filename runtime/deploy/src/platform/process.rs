//! The `process` target: the service's command started with `sh -c` on a
//! free loopback port (`$PORT`), each instance the leader of its own
//! process group, so stopping it stops everything it started.

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use super::{Instance, InstanceHandle, InstanceSpec, Platform, Strays};
use crate::error::{DeployError, Result};
use crate::plugin::BoxFuture;
use crate::spec::RunSpec;

/// Local processes. Instances outlive the kiln process that started them
/// (they are the deployed service); the journal records their handles.
#[derive(Debug, Default)]
pub struct ProcessPlatform {
    /// Children this process started, reaped on stop so none lingers as a
    /// zombie while kiln runs.
    children: Mutex<HashMap<i32, tokio::process::Child>>,
}

impl ProcessPlatform {
    /// A platform with no instances yet.
    pub fn new() -> Self {
        Self::default()
    }
}

/// A free loopback port: bind port 0 and let the kernel choose. Another
/// program could take it before the instance binds it; the instance then
/// fails its readiness check and the rollout rolls back.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Platform for ProcessPlatform {
    fn start<'a>(&'a self, spec: &'a InstanceSpec) -> BoxFuture<'a, Result<Instance>> {
        Box::pin(async move {
            let fail = |message: String| DeployError::Start {
                instance: spec.name.clone(),
                message,
            };
            let RunSpec::Command(command) = &spec.service.run else {
                return Err(fail(
                    "the `process` target runs a `command`, not an image".into(),
                ));
            };
            let port = free_port().map_err(|e| fail(format!("no free loopback port: {e}")))?;
            if let Some(dir) = spec.log.parent() {
                std::fs::create_dir_all(dir).map_err(|e| DeployError::io("create", dir, e))?;
            }
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&spec.log)
                .map_err(|e| DeployError::io("open", &spec.log, e))?;
            let err_log = log
                .try_clone()
                .map_err(|e| DeployError::io("open", &spec.log, e))?;
            let mut cmd = tokio::process::Command::new("sh");
            cmd.arg("-c")
                .arg(command)
                .current_dir(&spec.service.workdir)
                .envs(spec.service.env.iter().map(|(k, v)| (k, v)))
                .env("PORT", port.to_string())
                .env("KILN_DEPLOY_SERVICE", &spec.service.service)
                .env("KILN_DEPLOY_VERSION", &spec.service.version)
                .env("KILN_DEPLOY_INSTANCE", &spec.name)
                .env("KILN_DEPLOY_ROLLOUT", spec.rollout.to_string())
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(err_log)
                // Its own group: Ctrl-C in kiln's terminal does not reach
                // the service, and a stop signals everything it started.
                .process_group(0)
                .kill_on_drop(false);
            let child = cmd
                .spawn()
                .map_err(|e| fail(format!("cannot run `sh -c {command}`: {e}")))?;
            let pid = child
                .id()
                .and_then(|p| i32::try_from(p).ok())
                .ok_or_else(|| fail("it exited at once".into()))?;
            let start_time =
                proc_start_time(pid).ok_or_else(|| fail("it exited at once".into()))?;
            self.children
                .lock()
                .expect("not poisoned")
                .insert(pid, child);
            Ok(Instance {
                name: spec.name.clone(),
                version: spec.service.version.clone(),
                host: "127.0.0.1".into(),
                port,
                handle: InstanceHandle::Process { pid, start_time },
            })
        })
    }

    fn stop<'a>(
        &'a self,
        handle: &'a InstanceHandle,
        grace: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let InstanceHandle::Process { pid, start_time } = *handle else {
                return Err(DeployError::Invalid(
                    "the `process` target cannot stop a container".into(),
                ));
            };
            let child = self.children.lock().expect("not poisoned").remove(&pid);
            stop_group(pid, start_time, grace, child).await;
            Ok(())
        })
    }

    fn alive<'a>(&'a self, handle: &'a InstanceHandle) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            match *handle {
                InstanceHandle::Process { pid, start_time } => {
                    // Reap our own exited child first, or it reads as a zombie.
                    if let Some(child) = self.children.lock().expect("not poisoned").get_mut(&pid)
                        && matches!(child.try_wait(), Ok(Some(_)))
                    {
                        return false;
                    }
                    group_alive(pid, start_time)
                }
                InstanceHandle::Container { .. } => false,
            }
        })
    }

    /// Instances recorded as `starting` are found by the
    /// `KILN_DEPLOY_INSTANCE` each carries and their groups killed.
    fn stop_strays<'a>(&'a self, strays: &'a Strays<'a>) -> BoxFuture<'a, Result<usize>> {
        Box::pin(async move {
            let mut stopped = 0;
            for name in strays.starting {
                for pid in processes_with_env("KILN_DEPLOY_INSTANCE", name) {
                    kill_group(pid, Signal::KILL);
                    stopped += 1;
                }
            }
            Ok(stopped)
        })
    }
}

/// Pids whose environment holds `key=value` (this user's processes).
fn processes_with_env(key: &str, value: &str) -> Vec<i32> {
    let needle = format!("{key}={value}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
        })
        .collect()
}

/// SIGTERM to the group, SIGKILL after `grace`, then wait for the leader.
async fn stop_group(
    pid: i32,
    start_time: u64,
    grace: Duration,
    mut child: Option<tokio::process::Child>,
) {
    if !group_alive(pid, start_time) && child.is_none() {
        return;
    }
    kill_group(pid, Signal::TERM);
    let deadline = Instant::now() + grace;
    loop {
        if let Some(c) = child.as_mut() {
            if matches!(c.try_wait(), Ok(Some(_))) {
                break;
            }
        } else if !group_alive(pid, start_time) {
            break;
        }
        if Instant::now() >= deadline {
            kill_group(pid, Signal::KILL);
            if let Some(c) = child.as_mut() {
                let _ = tokio::time::timeout(Duration::from_secs(2), c.wait()).await;
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The leader is gone; members that ignored SIGTERM go now.
    kill_group(pid, Signal::KILL);
}

/// Signals process group `pgid`; a group that is gone is fine.
pub(crate) fn kill_group(pgid: i32, signal: Signal) {
    if let Some(pid) = Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

/// Whether the process `pid` started at `start_time` still runs (not a
/// zombie, not a reused pid).
pub(crate) fn group_alive(pid: i32, start_time: u64) -> bool {
    match stat(pid) {
        Some((state, start)) => start == start_time && state != 'Z' && state != 'X',
        None => false,
    }
}

/// `/proc/PID/stat` field 22: when the process started.
pub(crate) fn proc_start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

fn stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: parse
    // after the last `)`.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // `rest` starts at field 3; field 22 is 19 further.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}
