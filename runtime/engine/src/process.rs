//! The host executor: each step is `sh -e <script>` in its own process group.
//!
//! No isolation beyond the process group: steps see the host as the user
//! running kiln does. The group is what makes cleanup complete: stopping a
//! step signals every process it started, and when the step's shell exits
//! any process it left behind in the group is killed too.

use std::os::unix::fs::OpenOptionsExt;
use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use crate::event::Stream;
use crate::executor::{BoxFuture, Executor, OutputSender, StepControl, StepExit, StepRequest};

/// How long readers may keep draining output after the group was killed.
/// Only a process that escaped the group (`setsid`) can hold the pipes open
/// longer; its output is then dropped rather than hanging the run.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// Runs `run:` steps as host processes.
#[derive(Debug, Default, Clone)]
pub struct ProcessExecutor;

impl Executor for ProcessExecutor {
    fn run_step(
        &self,
        request: StepRequest,
        output: OutputSender,
        control: StepControl,
    ) -> BoxFuture<'static, StepExit> {
        Box::pin(run(request, output, control))
    }
}

async fn run(request: StepRequest, output: OutputSender, control: StepControl) -> StepExit {
    if let Err(e) = write_script(&request) {
        return StepExit::Infrastructure(format!(
            "cannot write the step script `{}`: {e}",
            request.script_path.display()
        ));
    }
    let mut child = match spawn(&request) {
        Ok(child) => child,
        Err(e) => {
            let _ = std::fs::remove_file(&request.script_path);
            return StepExit::Infrastructure(format!(
                "cannot start `{}`: {e}",
                request.shell.join(" ")
            ));
        }
    };
    let group = child.id().and_then(|pid| Pid::from_raw(pid as i32));
    let readers = [
        child
            .stdout
            .take()
            .map(|r| tokio::spawn(pump(r, Stream::Stdout, output.clone()))),
        child
            .stderr
            .take()
            .map(|r| tokio::spawn(pump(r, Stream::Stderr, output.clone()))),
    ];
    drop(output);

    let exit = wait(&mut child, group, &control).await;
    // Whatever the step left running in its group goes now.
    if let Some(group) = group {
        let _ = kill_process_group(group, Signal::KILL);
    }
    for reader in readers.into_iter().flatten() {
        let abort = reader.abort_handle();
        if tokio::time::timeout(DRAIN_LIMIT, reader).await.is_err() {
            abort.abort();
        }
    }
    let _ = std::fs::remove_file(&request.script_path);
    exit
}

/// The script goes into a file readable only by us: it may hold secrets,
/// which must never appear on a command line.
fn write_script(request: &StepRequest) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&request.script_path)?;
    file.write_all(request.script.as_bytes())
}

fn spawn(request: &StepRequest) -> std::io::Result<Child> {
    let (program, args) = request
        .shell
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty shell"))?;
    Command::new(resolve(program, &request.env))
        .args(args)
        .arg(&request.script_path)
        .current_dir(&request.workdir)
        .env_clear()
        .envs(request.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
}

/// Finds `program` on the step's `PATH` ourselves. Besides matching what
/// the step's env says, an absolute program lets std start the child with
/// `posix_spawn` instead of `fork`: forking a runner with a large heap costs
/// about a millisecond of page-table copying per step.
fn resolve(program: &str, env: &[(String, String)]) -> std::path::PathBuf {
    if program.contains('/') {
        return program.into();
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or("/usr/local/bin:/usr/bin:/bin", |(_, v)| v.as_str());
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        // Not found: let spawn report the error in its own words.
        .unwrap_or_else(|| program.into())
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Waits for the shell, stopping its group when told: SIGTERM, then SIGKILL
/// after the grace period (or at once on `kill`).
async fn wait(child: &mut Child, group: Option<Pid>, control: &StepControl) -> StepExit {
    let signal_group = |signal| {
        if let Some(group) = group {
            let _ = kill_process_group(group, signal);
        }
    };
    tokio::select! {
        status = child.wait() => return classify(status),
        _ = control.stop.cancelled() => signal_group(Signal::TERM),
        _ = control.kill.cancelled() => signal_group(Signal::KILL),
    }
    tokio::select! {
        status = child.wait() => return classify(status),
        _ = tokio::time::sleep(control.grace) => {},
        _ = control.kill.cancelled() => {},
    }
    signal_group(Signal::KILL);
    classify(child.wait().await)
}

fn classify(status: std::io::Result<std::process::ExitStatus>) -> StepExit {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => StepExit::Exited(code),
            (None, Some(signal)) => StepExit::Signaled(signal),
            (None, None) => StepExit::Infrastructure("the step ended in an unknown way".into()),
        },
        Err(e) => StepExit::Infrastructure(format!("cannot wait for the step: {e}")),
    }
}

async fn pump(mut reader: impl tokio::io::AsyncRead + Unpin, stream: Stream, output: OutputSender) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if output.send((stream, buf[..n].to_vec())).is_err() {
                    return;
                }
            }
        }
    }
}
