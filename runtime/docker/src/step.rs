//! Running one step: as an exec in the job's container, or in a container
//! of its own. Both stream raw output to the engine (which masks it) and
//! stop the step with SIGTERM → grace → SIGKILL when told.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters::{
    AttachContainerOptions, KillContainerOptions, WaitContainerOptions,
};
use futures_util::{Stream, StreamExt};
use kiln_engine::event::Stream as Channel;
use kiln_engine::executor::OutputSender;
use kiln_engine::{StepControl, StepExit, StepRequest};

use crate::engine::{Engine, api};
use crate::error::{DockerError, Result};
use crate::spec::{KILN_DIR, WORKSPACE};

/// How often a running exec is checked for having exited: a process it
/// left in the background may hold its output open long after.
const EXEC_POLL: Duration = Duration::from_millis(250);
/// How long output may still arrive once the step's process exited.
const DRAIN: Duration = Duration::from_millis(200);
/// How long a step container's output may still arrive once Docker
/// reported its exit: the pipes close with the container, so this is only
/// a bound, never a wait.
const OUTPUT_AFTER_EXIT: Duration = Duration::from_secs(2);
/// After SIGKILL, how long before the whole container is killed.
const KILL_FALLBACK: Duration = Duration::from_secs(2);

/// A step, translated into the container's view of the world.
pub(crate) struct Prepared {
    /// Shell + script path inside the container.
    pub cmd: Vec<String>,
    /// `KEY=value` lines.
    pub env: Vec<String>,
    /// Working directory inside the container.
    pub workdir: String,
    /// Where the container writes `$KILN_OUTPUT`, on the host.
    pub output_in: PathBuf,
    /// Where the engine reads it.
    pub output_out: Option<PathBuf>,
}

/// Writes the script into `kiln_dir` and rewrites paths: the workspace is
/// `/workspace`, kiln's files are under `/kiln`.
pub(crate) fn prepare(request: &StepRequest, kiln_dir: &Path) -> Result<Prepared> {
    use std::os::unix::fs::OpenOptionsExt;
    let script = kiln_dir.join(format!("{}.sh", request.step));
    let io = |action, path: &Path| {
        let path = path.to_owned();
        move |source| DockerError::Io {
            action,
            path,
            source,
        }
    };
    {
        use std::io::Write;
        // Readable by any container user; the directory above it is
        // private to kiln on the host.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&script)
            .map_err(io("write the step script", &script))?;
        file.write_all(request.script.as_bytes())
            .map_err(io("write the step script", &script))?;
    }
    let normalized = normalize(&request.workdir);
    let relative = normalized
        .strip_prefix(normalize(&request.workspace))
        .map_err(|_| {
            DockerError::Refused(format!(
                "`working-directory` `{}` is outside the workspace, which is all a container sees",
                request.workdir.display()
            ))
        })?;
    let workdir = Path::new(WORKSPACE).join(relative).display().to_string();
    let output_name = format!("{}.out", request.step);
    let mut output_out = None;
    let env = request
        .env
        .iter()
        .map(|(k, v)| match k {
            "KILN_WORKSPACE" => format!("{k}={WORKSPACE}"),
            "KILN_OUTPUT" => {
                output_out = Some(PathBuf::from(v));
                format!("{k}={KILN_DIR}/{output_name}")
            }
            _ => format!("{k}={v}"),
        })
        .collect();
    let mut cmd = request.shell.clone();
    cmd.push(format!("{KILN_DIR}/{}.sh", request.step));
    Ok(Prepared {
        cmd,
        env,
        workdir,
        output_in: kiln_dir.join(output_name),
        output_out,
    })
}

/// `a/b/../c` → `a/c`, without touching the file system: `..` must not
/// lead a container's working directory out of the workspace.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Hands `$KILN_OUTPUT` to the engine where it expects it.
pub(crate) fn deliver_outputs(prepared: &Prepared) {
    if let Some(target) = &prepared.output_out
        && prepared.output_in.exists()
        && std::fs::rename(&prepared.output_in, target).is_err()
    {
        let _ = std::fs::copy(&prepared.output_in, target);
        let _ = std::fs::remove_file(&prepared.output_in);
    }
}

fn send(output: &OutputSender, log: LogOutput) {
    let (channel, bytes) = match log {
        LogOutput::StdErr { message } => (Channel::Stderr, message),
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            (Channel::Stdout, message)
        }
        LogOutput::StdIn { .. } => return,
    };
    let _ = output.send((channel, bytes.to_vec()));
}

/// The stop sequence's state.
#[derive(Default)]
struct Stopping {
    term_sent: bool,
    kill_sent: bool,
}

/// Runs `prepared` as an exec in `container`.
pub(crate) async fn exec(
    engine: &Engine,
    container: &str,
    user: Option<String>,
    prepared: &Prepared,
    output: OutputSender,
    control: &StepControl,
) -> Result<StepExit> {
    let docker = engine.client().await?;
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(prepared.cmd.clone()),
                env: Some(prepared.env.clone()),
                working_dir: Some(prepared.workdir.clone()),
                user: user.clone(),
                ..Default::default()
            },
        )
        .await
        .map_err(api("create the step's exec"))?;
    let id = created.id;
    let started = docker
        .start_exec(&id, None)
        .await
        .map_err(api("start the step's exec"))?;
    let StartExecResults::Attached {
        output: mut logs, ..
    } = started
    else {
        return Err(DockerError::Refused(
            "docker started the exec detached".into(),
        ));
    };
    let mut stopping = Stopping::default();
    let mut poll = tokio::time::interval(EXEC_POLL);
    poll.tick().await;
    let grace = tokio::time::sleep(Duration::MAX / 4);
    tokio::pin!(grace);
    let fallback = tokio::time::sleep(Duration::MAX / 4);
    tokio::pin!(fallback);
    loop {
        tokio::select! {
            item = logs.next() => match item {
                Some(Ok(log)) => send(&output, log),
                Some(Err(_)) | None => break,
            },
            _ = poll.tick() => {
                let inspect = docker.inspect_exec(&id).await.map_err(api("inspect the step's exec"))?;
                if inspect.running == Some(false) {
                    drain(&mut logs, &output).await;
                    break;
                }
            }
            _ = control.stop.cancelled(), if !stopping.term_sent => {
                stopping.term_sent = true;
                signal_exec(engine, container, &id, user.as_deref(), "TERM").await;
                grace.as_mut().reset(tokio::time::Instant::now() + control.grace);
            }
            _ = &mut grace, if stopping.term_sent && !stopping.kill_sent => {
                stopping.kill_sent = true;
                signal_exec(engine, container, &id, user.as_deref(), "KILL").await;
                fallback.as_mut().reset(tokio::time::Instant::now() + KILL_FALLBACK);
            }
            _ = control.kill.cancelled(), if !stopping.kill_sent => {
                stopping.kill_sent = true;
                signal_exec(engine, container, &id, user.as_deref(), "KILL").await;
                fallback.as_mut().reset(tokio::time::Instant::now() + KILL_FALLBACK);
            }
            _ = &mut fallback, if stopping.kill_sent => {
                // The step's processes could not be signalled one by one
                // (no `kill` in the image): the container goes instead.
                let _ = docker
                    .kill_container(container, Some(KillContainerOptions { signal: "KILL".into() }))
                    .await;
                return Ok(StepExit::Signaled(9));
            }
        }
    }
    let inspect = docker
        .inspect_exec(&id)
        .await
        .map_err(api("inspect the step's exec"))?;
    Ok(match inspect.exit_code {
        Some(code) => StepExit::Exited(i32::try_from(code).unwrap_or(-1)),
        None => StepExit::Infrastructure("docker did not report the step's exit code".into()),
    })
}

async fn drain(
    logs: &mut (impl Stream<Item = std::result::Result<LogOutput, bollard::errors::Error>> + Unpin),
    output: &OutputSender,
) {
    let _ = tokio::time::timeout(DRAIN, async {
        while let Some(Ok(log)) = logs.next().await {
            send(output, log);
        }
    })
    .await;
}

/// Signals every process of an exec: the exec's process leads its own
/// session (runc makes it so), so its process group is the whole step.
/// The group is signalled from inside the container with the image's
/// `kill`, which works whoever runs kiln; the host pid from Docker is
/// translated through `/proc/<pid>/status` (`NSpid`).
async fn signal_exec(
    engine: &Engine,
    container: &str,
    exec: &str,
    user: Option<&str>,
    signal: &str,
) {
    let Ok(docker) = engine.client().await else {
        return;
    };
    let Ok(inspect) = docker.inspect_exec(exec).await else {
        return;
    };
    let Some(host_pid) = inspect.pid.filter(|p| *p > 0) else {
        return;
    };
    let inner = std::fs::read_to_string(format!("/proc/{host_pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .and_then(|pids| pids.split_whitespace().last().map(str::to_owned))
        });
    if let Some(pid) = inner {
        let killer = CreateExecOptions {
            cmd: Some(vec![
                "kill".to_owned(),
                "-s".to_owned(),
                signal.to_owned(),
                "--".to_owned(),
                format!("-{pid}"),
            ]),
            user: user.map(str::to_owned),
            ..Default::default()
        };
        if let Ok(created) = docker.create_exec(container, killer).await {
            let detached = bollard::exec::StartExecOptions {
                detach: true,
                ..Default::default()
            };
            if docker.start_exec(&created.id, Some(detached)).await.is_ok() {
                return;
            }
        }
    }
    // No `kill` in the image, or kiln sees another pid namespace: signal
    // the group from the host, which works when kiln may (same user, root).
    if let Some(pid) = i32::try_from(host_pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let sig = if signal == "KILL" {
            rustix::process::Signal::KILL
        } else {
            rustix::process::Signal::TERM
        };
        let _ = rustix::process::kill_process_group(pid, sig);
    }
}

/// Runs a container that is the step (its entrypoint is the step's shell):
/// attached, started, waited for, as `docker run` does. The caller removes
/// it.
pub(crate) async fn own_container(
    engine: &Engine,
    container: &str,
    output: OutputSender,
    control: &StepControl,
) -> Result<StepExit> {
    let docker = engine.client().await?;
    // Attached before the start: every byte comes straight from the
    // container's pipes (none is missed, none goes through the log
    // driver), and the stream ends as soon as they close.
    let attached = docker
        .attach_container(
            container,
            Some(AttachContainerOptions {
                stdout: true,
                stderr: true,
                stream: true,
                ..Default::default()
            }),
        )
        .await
        .map_err(api("attach to the step's container"))?;
    let mut logs = attached.output;
    docker
        .start_container(container, None)
        .await
        .map_err(api("start the step's container"))?;
    // Asked right after the start, beside the output rather than after it,
    // so the engine answers the moment the container exits. `not-running`
    // (the default) is right here: the container has started, and one that
    // exited already is answered at once.
    let wait = async {
        docker
            .wait_container(container, None::<WaitContainerOptions>)
            .next()
            .await
    };
    tokio::pin!(wait);
    let mut exited = None;
    let mut stopping = Stopping::default();
    let grace = tokio::time::sleep(Duration::MAX / 4);
    tokio::pin!(grace);
    let kill = |signal: &'static str| async move {
        // Every process of the step, not just the one Docker's init
        // forwards to: `kill -1` inside the container signals all but
        // PID 1 and itself.
        let all = CreateExecOptions {
            cmd: Some(vec![
                "kill".to_owned(),
                "-s".to_owned(),
                signal.to_owned(),
                "-1".to_owned(),
            ]),
            ..Default::default()
        };
        if let Ok(created) = docker.create_exec(container, all).await {
            let detached = bollard::exec::StartExecOptions {
                detach: true,
                ..Default::default()
            };
            let _ = docker.start_exec(&created.id, Some(detached)).await;
        }
        let _ = docker
            .kill_container(
                container,
                Some(KillContainerOptions {
                    signal: signal.into(),
                }),
            )
            .await;
    };
    loop {
        tokio::select! {
            item = logs.next() => match item {
                Some(Ok(log)) => send(&output, log),
                Some(Err(_)) | None => break,
            },
            result = &mut wait, if exited.is_none() => {
                exited = Some(result);
                // The pipes close with the container; what is still in
                // flight arrives now, and nothing may hold the step open.
                let _ = tokio::time::timeout(OUTPUT_AFTER_EXIT, async {
                    while let Some(Ok(log)) = logs.next().await {
                        send(&output, log);
                    }
                })
                .await;
                break;
            }
            _ = control.stop.cancelled(), if !stopping.term_sent => {
                stopping.term_sent = true;
                kill("TERM").await;
                grace.as_mut().reset(tokio::time::Instant::now() + control.grace);
            }
            _ = &mut grace, if stopping.term_sent && !stopping.kill_sent => {
                stopping.kill_sent = true;
                kill("KILL").await;
            }
            _ = control.kill.cancelled(), if !stopping.kill_sent => {
                stopping.kill_sent = true;
                kill("KILL").await;
            }
        }
    }
    let waited = match exited {
        Some(waited) => waited,
        None => wait.await,
    };
    let code = match waited {
        Some(Ok(response)) => response.status_code,
        // A non-zero exit arrives as this error.
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
        Some(Err(e)) => return Err(api("wait for the step's container")(e)),
        None => {
            return Ok(StepExit::Infrastructure(
                "docker did not report the step's exit code".into(),
            ));
        }
    };
    Ok(StepExit::Exited(i32::try_from(code).unwrap_or(-1)))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use kiln_engine::{Placement, StepRequest};

    use super::{normalize, prepare};

    fn request(workdir: &str) -> StepRequest {
        StepRequest {
            job: "build".into(),
            step: 2,
            script: "make\n".into(),
            literal_script: true,
            shell: vec!["bash".into(), "-e".into()],
            workdir: PathBuf::from(workdir),
            env: vec![
                ("KILN_WORKSPACE".into(), "/home/me/proj".into()),
                ("KILN_OUTPUT".into(), "/dev/shm/kiln-1/0-1-2.out".into()),
                ("GREETING".into(), "hi=there".into()),
            ]
            .into_iter()
            .collect(),
            script_path: PathBuf::from("/unused"),
            workspace: PathBuf::from("/home/me/proj"),
            placement: Placement::JobContainer,
        }
    }

    #[test]
    fn a_step_is_translated_into_the_containers_paths() {
        let dir = tempfile::tempdir().expect("temp dir");
        let prepared = prepare(&request("/home/me/proj/sub/../app"), dir.path()).expect("prepared");
        assert_eq!(prepared.cmd, ["bash", "-e", "/kiln/2.sh"]);
        assert_eq!(prepared.workdir, "/workspace/app");
        assert_eq!(
            prepared.env,
            [
                "KILN_WORKSPACE=/workspace",
                "KILN_OUTPUT=/kiln/2.out",
                "GREETING=hi=there"
            ]
        );
        assert_eq!(prepared.output_in, dir.path().join("2.out"));
        assert_eq!(
            prepared.output_out,
            Some(PathBuf::from("/dev/shm/kiln-1/0-1-2.out"))
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("2.sh")).expect("script"),
            "make\n"
        );
    }

    #[test]
    fn a_working_directory_outside_the_workspace_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let error = prepare(&request("/home/me/proj/../other"), dir.path())
            .err()
            .expect("refused");
        assert_eq!(
            error.to_string(),
            "`working-directory` `/home/me/proj/../other` is outside the workspace, which is all a container sees"
        );
        assert_eq!(normalize("/a/./b/../c".as_ref()), PathBuf::from("/a/c"));
    }
}
