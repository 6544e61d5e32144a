//! The host executor: each step is `sh -e <script>` in its own process group.
//!
//! No isolation beyond the process group: steps see the host as the user
//! running kiln does. The group is what makes cleanup complete: stopping a
//! step signals every process it started, and when the step's shell exits
//! any process it left behind in the group is killed too.

mod spawn;

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use rustix::process::{Signal, kill_process_group};
use tokio::net::unix::pipe::Receiver;

use crate::event::Stream;
use crate::executor::{BoxFuture, Env, Executor, OutputSender, StepControl, StepExit, StepRequest};
pub use spawn::leave_signals_to_the_engine_thread;
use spawn::{Child, Ended, Exit, Spawn};

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
        let program = match request.shell.first() {
            Some(program) => self.resolve(program, &request.env),
            None => Err(std::io::Error::other("empty shell")),
        };
        Box::pin(run(request, program, output, control))
    }
}

impl ProcessExecutor {
    /// Finds `program` on the step's `PATH`, not kiln's: the step's env
    /// says where its programs are. `execve` itself searches nothing,
    /// and would take a bare name relative to the working directory.
    fn resolve(&self, program: &str, env: &Env) -> std::io::Result<PathBuf> {
        if program.contains('/') {
            return Ok(program.into());
        }
        let path = env.get("PATH").unwrap_or("/usr/local/bin:/usr/bin:/bin");
        let mut found = self.found.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = found.get(path).and_then(|on_path| on_path.get(program)) {
            return Ok(hit.clone());
        }
        match std::env::split_paths(path)
            .map(|dir| dir.join(program))
            .find(|candidate| is_executable(candidate))
        {
            Some(hit) => {
                let on_path = found.entry(path.to_owned()).or_default();
                on_path.insert(program.to_owned(), hit.clone());
                Ok(hit)
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("`{program}` is not on the step's PATH"),
            )),
        }
    }
}

async fn run(
    request: StepRequest,
    program: std::io::Result<PathBuf>,
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
    let Child {
        stdout,
        stderr,
        exit: mut process,
    } = match program.and_then(|program| start(&program, &request, script)) {
        Ok(child) => child,
        Err(e) => {
            remove_script();
            return StepExit::Infrastructure(format!(
                "cannot start `{}`: {e}",
                request.shell.join(" ")
            ));
        }
    };
    let mut reading = std::pin::pin!(read_output(stdout, stderr, output));
    let mut drained = false;
    let exit = {
        let waiting = async {
            let exit = wait(&mut process, &control).await;
            // Whatever the step left running in its group goes now.
            let _ = kill_process_group(process.pid(), Signal::KILL);
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

fn start(
    program: &std::path::Path,
    request: &StepRequest,
    script: Script,
) -> std::io::Result<Child> {
    let mut args: Vec<&[u8]> = request
        .shell
        .iter()
        .skip(1)
        .map(|arg| arg.as_bytes())
        .collect();
    match script {
        Script::Inline => args.extend([b"-c".as_slice(), request.script.as_bytes()]),
        Script::File => args.push(request.script_path.as_os_str().as_bytes()),
    }
    spawn::spawn(&Spawn {
        program,
        args: &args,
        env: &request.env,
        workdir: &request.workdir,
    })
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Waits for the shell, stopping its group when told: SIGTERM, then SIGKILL
/// after the grace period (or at once on `kill`).
async fn wait(process: &mut Exit, control: &StepControl) -> StepExit {
    let group = process.pid();
    let signal_group = |signal| {
        let _ = kill_process_group(group, signal);
    };
    tokio::select! {
        ended = process.wait() => return classify(ended),
        _ = control.stop.cancelled() => signal_group(Signal::TERM),
        _ = control.kill.cancelled() => signal_group(Signal::KILL),
    }
    tokio::select! {
        ended = process.wait() => return classify(ended),
        _ = tokio::time::sleep(control.grace) => {},
        _ = control.kill.cancelled() => {},
    }
    signal_group(Signal::KILL);
    classify(process.wait().await)
}

fn classify(ended: std::io::Result<Ended>) -> StepExit {
    match ended {
        Ok(Ended::Exited(code)) => StepExit::Exited(code),
        Ok(Ended::Signaled(signal)) => StepExit::Signaled(signal),
        Err(e) => StepExit::Infrastructure(format!("cannot wait for the step: {e}")),
    }
}

/// Streams both pipes until each is closed (or unreadable). When both have
/// output at once, stdout's is read first, as it was most likely written
/// first (`echo one; echo two >&2`).
async fn read_output(stdout: Receiver, stderr: Receiver, output: OutputSender) {
    let (mut stdout_done, mut stderr_done) = (false, false);
    let mut stdout = std::pin::pin!(pump(stdout, Stream::Stdout, &output));
    let mut stderr = std::pin::pin!(pump(stderr, Stream::Stderr, &output));
    while !(stdout_done && stderr_done) {
        tokio::select! {
            biased;
            () = &mut stdout, if !stdout_done => stdout_done = true,
            () = &mut stderr, if !stderr_done => stderr_done = true,
        }
    }
}

/// Forwards what the pipe gives until it closes. Most steps print little
/// or nothing, so a read goes into a small buffer on the stack, which is no
/// part of the step's future (it lives between two waits only); a step
/// that fills it gets a large buffer on the heap for the rest of its reads.
async fn pump(reader: Receiver, stream: Stream, output: &OutputSender) {
    const SMALL: usize = 1024;
    const LARGE: usize = 16 * 1024;
    let mut large = Vec::new();
    loop {
        if reader.readable().await.is_err() {
            return;
        }
        let mut small = [0u8; SMALL];
        let buf: &mut [u8] = if large.is_empty() {
            &mut small
        } else {
            &mut large
        };
        match reader.try_read(buf) {
            Ok(0) => return,
            Ok(n) => {
                let filled = n == buf.len();
                if output.send((stream, buf[..n].to_vec())).is_err() {
                    return;
                }
                if filled && large.is_empty() {
                    large = vec![0; LARGE];
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}
