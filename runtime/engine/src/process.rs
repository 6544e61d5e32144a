//! The host executor: each step is `sh -e <script>` in its own process group.
//!
//! No isolation beyond the process group: steps see the host as the user
//! running kiln does. The group is what makes cleanup complete: stopping a
//! step signals every process it started, and when the step's shell exits
//! any process it left behind in the group is killed too.

use std::collections::HashMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

use crate::event::Stream;
use crate::executor::{BoxFuture, Executor, OutputSender, StepControl, StepExit, StepRequest};

/// How long readers may keep draining output after the group was killed.
/// Only a process that escaped the group (`setsid`) can hold the pipes open
/// longer; its output is then dropped rather than hanging the run.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// The longest script passed to a POSIX shell as `-c TEXT` rather than in a
/// file: well under Linux's 128 KiB limit on one argument.
const INLINE_SCRIPT_MAX: usize = 32 * 1024;

/// Runs `run:` steps as host processes.
#[derive(Debug, Default)]
pub struct ProcessExecutor {
    /// Programs found, by `PATH` and then by name. Like a shell's command
    /// hash, a program found once is not looked up again: the lookup (a
    /// `stat` per `PATH` entry) was a tenth of kiln's own work per no-op
    /// step. A program not found is looked up again every time, so a job
    /// may install the shell a later job uses. Keyed by `&str` lookups, so
    /// a hit allocates nothing.
    found: Mutex<HashMap<String, HashMap<String, PathBuf>>>,
}

impl Executor for ProcessExecutor {
    fn run_step(
        &self,
        request: StepRequest,
        output: OutputSender,
        control: StepControl,
    ) -> BoxFuture<'static, StepExit> {
        let program = request
            .shell
            .first()
            .map(|program| self.resolve(program, &request.env));
        Box::pin(run(request, program, output, control))
    }
}

impl ProcessExecutor {
    /// Finds `program` on the step's `PATH` ourselves. Besides matching what
    /// the step's env says, an absolute program lets std start the child
    /// with `posix_spawn` instead of `fork`: forking a runner with a large
    /// heap costs about a millisecond of page-table copying per step.
    fn resolve(&self, program: &str, env: &[(String, String)]) -> PathBuf {
        if program.contains('/') {
            return program.into();
        }
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map_or("/usr/local/bin:/usr/bin:/bin", |(_, v)| v.as_str());
        let mut found = self.found.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = found.get(path).and_then(|on_path| on_path.get(program)) {
            return hit.clone();
        }
        match std::env::split_paths(path)
            .map(|dir| dir.join(program))
            .find(|candidate| is_executable(candidate))
        {
            Some(hit) => {
                let on_path = found.entry(path.to_owned()).or_default();
                on_path.insert(program.to_owned(), hit.clone());
                hit
            }
            // Not found: let spawn report the error in its own words.
            None => program.into(),
        }
    }
}

async fn run(
    request: StepRequest,
    program: Option<PathBuf>,
    output: OutputSender,
    control: StepControl,
) -> StepExit {
    let script = if passes_inline(&request) {
        Script::Inline
    } else {
        if let Err(e) = write_script(&request) {
            return StepExit::Infrastructure(format!(
                "cannot write the step script `{}`: {e}",
                request.script_path.display()
            ));
        }
        Script::File
    };
    let remove_script = || {
        if script == Script::File {
            let _ = std::fs::remove_file(&request.script_path);
        }
    };
    let mut child = match program
        .ok_or_else(|| std::io::Error::other("empty shell"))
        .and_then(|program| spawn(&program, &request, script))
    {
        Ok(child) => child,
        Err(e) => {
            remove_script();
            return StepExit::Infrastructure(format!(
                "cannot start `{}`: {e}",
                request.shell.join(" ")
            ));
        }
    };
    let group = child.id().and_then(|pid| Pid::from_raw(pid as i32));
    let mut reading = std::pin::pin!(read_output(
        child.stdout.take(),
        child.stderr.take(),
        output
    ));
    let mut drained = false;
    let exit = {
        let waiting = async {
            let exit = wait(&mut child, group, &control).await;
            // Whatever the step left running in its group goes now.
            if let Some(group) = group {
                let _ = kill_process_group(group, Signal::KILL);
            }
            exit
        };
        let mut waiting = std::pin::pin!(waiting);
        loop {
            tokio::select! {
                exit = &mut waiting => break exit,
                () = &mut reading, if !drained => drained = true,
            }
        }
    };
    if !drained {
        let _ = tokio::time::timeout(DRAIN_LIMIT, reading).await;
    }
    remove_script();
    exit
}

/// How the shell gets its script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    /// As `-c TEXT`.
    Inline,
    /// In the file at [`StepRequest::script_path`].
    File,
}

/// Whether the script may go on the shell's command line, which every user
/// of the machine can read (`/proc/<pid>/cmdline`). Only the pipeline's own
/// text may: a script with `${{ }}` rendered into it may hold a secret. It
/// also saves a file's creation and removal per step.
fn passes_inline(request: &StepRequest) -> bool {
    let posix_shell = request.shell.first().is_some_and(|program| {
        let name = program.rsplit('/').next().unwrap_or(program);
        kiln_pipeline::POSIX_SHELLS.contains(&name)
    });
    posix_shell
        && request.literal_script
        && request.script.len() <= INLINE_SCRIPT_MAX
        // A leading `-` would read as an option, and NUL cannot be passed.
        && !request.script.starts_with('-')
        && !request.script.contains('\0')
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

fn spawn(
    program: &std::path::Path,
    request: &StepRequest,
    script: Script,
) -> std::io::Result<Child> {
    let mut command = Command::new(program);
    command.args(request.shell.iter().skip(1));
    match script {
        Script::Inline => command.arg("-c").arg(&request.script),
        Script::File => command.arg(&request.script_path),
    };
    command
        .current_dir(&request.workdir)
        .env_clear()
        .envs(request.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
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

/// Streams both pipes until each is closed (or unreadable). When both have
/// output at once, stdout's is read first, as it was most likely written
/// first (`echo one; echo two >&2`).
async fn read_output(
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    output: OutputSender,
) {
    let (mut stdout_done, mut stderr_done) = (stdout.is_none(), stderr.is_none());
    let mut stdout = std::pin::pin!(async {
        if let Some(reader) = stdout {
            pump(reader, Stream::Stdout, &output).await;
        }
    });
    let mut stderr = std::pin::pin!(async {
        if let Some(reader) = stderr {
            pump(reader, Stream::Stderr, &output).await;
        }
    });
    while !(stdout_done && stderr_done) {
        tokio::select! {
            biased;
            () = &mut stdout, if !stdout_done => stdout_done = true,
            () = &mut stderr, if !stderr_done => stderr_done = true,
        }
    }
}

async fn pump(
    mut reader: impl tokio::io::AsyncRead + Unpin,
    stream: Stream,
    output: &OutputSender,
) {
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        buf.clear();
        match reader.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if output.send((stream, buf.clone())).is_err() {
                    return;
                }
            }
        }
    }
}
