//! Starting a step's shell with `posix_spawn`, and waiting for it on a
//! pidfd.
//!
//! Why not `std::process::Command`: it keeps a replaced environment as a
//! map, copies that map on every spawn and then builds one C string per
//! variable, and tokio wraps it once more. For a no-op step that was a
//! third of kiln's own CPU time, which decides how close kiln's scheduler
//! comes to `make -j` (docs/decisions.md, "Scheduler overhead"). Here the
//! environment becomes one block of `KEY=VALUE\0` strings per spawn, and
//! the rest of what `Command` did for us is spelled out below: file
//! actions for the three standard streams and the working directory, a
//! process group of its own, an empty signal mask and `SIGPIPE` back to its
//! default (Rust ignores it in kiln itself).
//!
//! The exit is awaited on a pidfd (Linux 5.4), registered with tokio's
//! reactor, and collected with `waitid(P_PIDFD)`; where pidfds are refused,
//! each `SIGCHLD` is the cue to look with `waitid(P_PID)` instead. Nothing
//! else in kiln reaps this child.

use std::ffi::{CString, c_char};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{OFlags, fcntl_setfl};
use rustix::pipe::{PipeFlags, pipe_with};
use rustix::process::{
    Pid, PidfdFlags, Signal, WaitId, WaitIdOptions, kill_process_group, pidfd_open, waitid,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe::Receiver;

use crate::executor::Env;

/// What a process to start is made of, borrowed from the step request.
pub(super) struct Spawn<'a> {
    /// A path (a relative one is taken from the working directory): no
    /// `PATH` search happens here.
    pub program: &'a Path,
    /// Arguments after the program name (`argv[1..]`).
    pub args: &'a [&'a [u8]],
    /// The complete environment.
    pub env: &'a Env,
    /// The working directory.
    pub workdir: &'a Path,
}

/// A started process: its output pipes, and its exit (which knows its pid).
pub(super) struct Child {
    pub stdout: Receiver,
    pub stderr: Receiver,
    pub exit: Exit,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    Exited(i32),
    Signaled(i32),
}

/// The exit of a started process. Dropped before the process was reaped
/// (its step's future was dropped), it kills the process group and reaps
/// the leader in the background.
pub(super) struct Exit {
    pid: Pid,
    watch: Option<Watch>,
}

/// How the exit is noticed.
enum Watch {
    /// A pidfd, readable once the process has exited (Linux 5.4 and later).
    Pidfd(AsyncFd<OwnedFd>),
    /// Where there are no pidfds (an older kernel, a seccomp filter,
    /// valgrind): every `SIGCHLD` is a cue to look.
    Sigchld(tokio::signal::unix::Signal),
}

impl Watch {
    fn new(pid: Pid) -> io::Result<Self> {
        let pidfd = pidfd_open(pid, PidfdFlags::NONBLOCK)
            .map_err(io::Error::from)
            .and_then(|fd| {
                // SAFETY: an `OwnedFd` stays open and names the same pidfd
                // for as long as the `AsyncFd` owns it.
                Ok(unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?)
            });
        match pidfd {
            Ok(pidfd) => Ok(Watch::Pidfd(pidfd)),
            Err(_) => tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())
                .map(Watch::Sigchld),
        }
    }

    /// Waits until the process has exited and reaps it.
    async fn reap(&mut self, pid: Pid) -> io::Result<Ended> {
        let exited = WaitIdOptions::EXITED | WaitIdOptions::NOHANG;
        loop {
            match self {
                Watch::Pidfd(pidfd) => {
                    let mut ready = pidfd.readable().await?;
                    match waitid(WaitId::PidFd(pidfd.get_ref().as_fd()), exited)? {
                        Some(status) => return ended(&status),
                        // Readable yet not exited: a spurious wake-up.
                        None => ready.clear_ready(),
                    }
                }
                Watch::Sigchld(signals) => {
                    // Looked at before each wait: the process may have
                    // exited before the signal stream existed.
                    if let Some(status) = waitid(WaitId::Pid(pid), exited)? {
                        return ended(&status);
                    }
                    signals.recv().await;
                }
            }
        }
    }
}

fn ended(status: &rustix::process::WaitIdStatus) -> io::Result<Ended> {
    match (status.exit_status(), status.terminating_signal()) {
        (Some(code), _) => Ok(Ended::Exited(code)),
        (None, Some(signal)) => Ok(Ended::Signaled(signal)),
        (None, None) => Err(io::Error::other("the process ended in an unknown way")),
    }
}

impl Exit {
    /// The process's pid, which is also its process group's id.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Waits for the process to end and reaps it. After the first `Ok`,
    /// later calls fail.
    pub async fn wait(&mut self) -> io::Result<Ended> {
        let Some(watch) = &mut self.watch else {
            return Err(io::Error::other("the process was already reaped"));
        };
        let ended = watch.reap(self.pid).await?;
        self.watch = None;
        Ok(ended)
    }
}

impl Drop for Exit {
    fn drop(&mut self) {
        let Some(mut watch) = self.watch.take() else {
            return;
        };
        let _ = kill_process_group(self.pid, Signal::KILL);
        // Reaping needs the reactor the watch is registered with; without
        // it (the runtime is shutting down) the zombie stays until kiln
        // exits, which is soon.
        let pid = self.pid;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = watch.reap(pid).await;
            });
        }
    }
}

/// Starts `spec.program` with stdin from `/dev/null`, stdout and stderr
/// piped, in a new process group led by itself. Must be called within a
/// tokio runtime with I/O enabled.
pub(super) fn spawn(spec: &Spawn<'_>) -> io::Result<Child> {
    let program = c_string(spec.program.as_os_str().as_bytes())?;
    let workdir = c_string(spec.workdir.as_os_str().as_bytes())?;
    let args = spec
        .args
        .iter()
        .map(|arg| c_string(arg))
        .collect::<io::Result<Vec<_>>>()?;
    // `argv[0]` is the program's path, as std sets it.
    let argv = null_terminated(
        std::iter::once(program.as_ptr()).chain(args.iter().map(|arg| arg.as_ptr())),
    );
    let env = EnvBlock::new(spec.env)?;
    let envp = env.pointers();

    // Our ends are read non-blocking by the reactor; the child's ends stay
    // blocking, as a shell expects of its stdout. Every fd kiln opens is
    // close-on-exec, so the child gets exactly the three below. std makes
    // sure fds 0-2 are open in kiln, so neither a pipe nor `/dev/null`
    // lands on them (where `dup2` onto itself would keep close-on-exec).
    let (stdout_read, stdout_write) = pipe_with(PipeFlags::CLOEXEC)?;
    let (stderr_read, stderr_write) = pipe_with(PipeFlags::CLOEXEC)?;
    for read_end in [&stdout_read, &stderr_read] {
        fcntl_setfl(read_end, OFlags::NONBLOCK)?;
    }

    let mut actions = FileActions::new()?;
    actions.dup2(dev_null()?.as_raw_fd(), libc::STDIN_FILENO)?;
    actions.dup2(stdout_write.as_raw_fd(), libc::STDOUT_FILENO)?;
    actions.dup2(stderr_write.as_raw_fd(), libc::STDERR_FILENO)?;
    actions.chdir(&workdir)?;
    let attributes = Attributes::new()?;

    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is valid for the duration of the call: the C
    // strings and the two pointer arrays (each ending in NULL) are owned by
    // locals that outlive it, and `actions` and `attributes` are
    // initialised and not yet destroyed.
    check(unsafe {
        libc::posix_spawn(
            &mut pid,
            program.as_ptr(),
            &actions.0,
            &attributes.0,
            argv.as_ptr(),
            envp.as_ptr(),
        )
    })?;
    drop((stdout_write, stderr_write));
    let pid = Pid::from_raw(pid).ok_or_else(|| io::Error::other("posix_spawn gave no pid"))?;
    let exit = match Watch::new(pid) {
        Ok(watch) => Exit {
            pid,
            watch: Some(watch),
        },
        Err(e) => {
            // Without a way to wait, the process must not run unwatched.
            let _ = kill_process_group(pid, Signal::KILL);
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
            return Err(e);
        }
    };
    Ok(Child {
        stdout: Receiver::from_owned_fd_unchecked(stdout_read)?,
        stderr: Receiver::from_owned_fd_unchecked(stderr_read)?,
        exit,
    })
}

/// `/dev/null`, opened once for every step's stdin: `dup2` of an open fd
/// spares each child a path lookup and a file of its own while the engine
/// waits for it to exec.
fn dev_null() -> io::Result<&'static OwnedFd> {
    static DEV_NULL: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();
    if let Some(fd) = DEV_NULL.get() {
        return Ok(fd);
    }
    let fd = rustix::fs::open(
        "/dev/null",
        OFlags::RDONLY | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    // Another thread may have won the race; its fd is kept, this one closed.
    Ok(DEV_NULL.get_or_init(|| fd))
}

fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a NUL byte cannot be passed to a process",
        )
    })
}

fn null_terminated(pointers: impl Iterator<Item = *const c_char>) -> Vec<*mut c_char> {
    pointers
        .map(|p| p.cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect()
}

/// The environment as one buffer of `KEY=VALUE\0` strings: one allocation
/// per spawn instead of one per variable.
struct EnvBlock {
    bytes: Vec<u8>,
    starts: Vec<usize>,
}

impl EnvBlock {
    fn new(env: &Env) -> io::Result<Self> {
        let size = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        let mut bytes = Vec::with_capacity(size);
        let mut starts = Vec::new();
        for (key, value) in env.iter() {
            let problem = if key.is_empty() || key.contains(['=', '\0']) {
                Some("a name must be non-empty and hold no `=` or NUL byte")
            } else if value.contains('\0') {
                Some("its value holds a NUL byte; remove the `\\0`")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "environment variable `{}` cannot be passed to a process: {problem}",
                        key.escape_default()
                    ),
                ));
            }
            starts.push(bytes.len());
            bytes.extend_from_slice(key.as_bytes());
            bytes.push(b'=');
            bytes.extend_from_slice(value.as_bytes());
            bytes.push(0);
        }
        Ok(Self { bytes, starts })
    }

    /// `envp`: valid while `self` is neither moved nor changed.
    fn pointers(&self) -> Vec<*mut c_char> {
        let base = self.bytes.as_ptr().cast::<c_char>();
        // `wrapping_add` stays within `bytes`: every start is an index into it.
        null_terminated(self.starts.iter().map(|&start| base.wrapping_add(start)))
    }
}

fn check(code: libc::c_int) -> io::Result<()> {
    match code {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// `posix_spawn_file_actions_t`, destroyed on drop.
struct FileActions(libc::posix_spawn_file_actions_t);

impl FileActions {
    fn new() -> io::Result<Self> {
        // SAFETY: an all-zero value is a valid argument to `_init`, which
        // initialises it fully before any other use.
        let mut actions = unsafe { std::mem::zeroed() };
        check(unsafe { libc::posix_spawn_file_actions_init(&mut actions) })?;
        Ok(Self(actions))
    }

    fn dup2(&mut self, from: libc::c_int, to: libc::c_int) -> io::Result<()> {
        // SAFETY: `self.0` is initialised.
        check(unsafe { libc::posix_spawn_file_actions_adddup2(&mut self.0, from, to) })
    }

    fn chdir(&mut self, dir: &CString) -> io::Result<()> {
        // SAFETY: `self.0` is initialised; glibc copies the path.
        check(unsafe { libc::posix_spawn_file_actions_addchdir_np(&mut self.0, dir.as_ptr()) })
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` and destroyed only here.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
    }
}

/// `posix_spawnattr_t` for a step: a process group of its own, no blocked
/// signals, `SIGPIPE` at its default. Destroyed on drop.
struct Attributes(libc::posix_spawnattr_t);

impl Attributes {
    fn new() -> io::Result<Self> {
        // SAFETY: as for `FileActions::new`; the signal sets are initialised
        // by `sigemptyset` before use, and glibc copies them.
        unsafe {
            let mut attributes = std::mem::zeroed();
            check(libc::posix_spawnattr_init(&mut attributes))?;
            let mut this = Self(attributes);
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            check(libc::posix_spawnattr_setsigmask(&mut this.0, &none))?;
            let mut pipe: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut pipe);
            libc::sigaddset(&mut pipe, libc::SIGPIPE);
            check(libc::posix_spawnattr_setsigdefault(&mut this.0, &pipe))?;
            check(libc::posix_spawnattr_setpgroup(&mut this.0, 0))?;
            let flags = libc::POSIX_SPAWN_SETPGROUP
                | libc::POSIX_SPAWN_SETSIGMASK
                | libc::POSIX_SPAWN_SETSIGDEF;
            check(libc::posix_spawnattr_setflags(
                &mut this.0,
                flags as libc::c_short,
            ))?;
            Ok(this)
        }
    }
}

impl Drop for Attributes {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` and destroyed only here.
        unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, env: &[(&str, &str)]) -> io::Result<Child> {
        let env: Env = env
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let args: [&[u8]; 2] = [b"-c", script.as_bytes()];
        spawn(&Spawn {
            program: Path::new("/bin/sh"),
            args: &args,
            env: &env,
            workdir: Path::new("/"),
        })
    }

    /// `program` with no arguments and no environment, in `workdir`.
    fn bare(program: &str, workdir: &str) -> io::Result<Child> {
        spawn(&Spawn {
            program: Path::new(program),
            args: &[],
            env: &Env::default(),
            workdir: Path::new(workdir),
        })
    }

    async fn read_all(mut pipe: Receiver) -> String {
        use tokio::io::AsyncReadExt;
        let mut text = String::new();
        pipe.read_to_string(&mut text).await.unwrap();
        text
    }

    #[tokio::test]
    async fn passes_exactly_the_environment_arguments_and_directory() {
        let env = [("ONE", "1"), ("TWO", "a b=c")];
        let mut child = sh("env | sort; pwd; echo err >&2; exit 3", &env).unwrap();
        let (out, err, ended) = tokio::join!(
            read_all(child.stdout),
            read_all(child.stderr),
            child.exit.wait()
        );
        // `sh` adds PWD of its own; nothing else may come from kiln's env.
        assert_eq!(out, "ONE=1\nPWD=/\nTWO=a b=c\n/\n");
        assert_eq!(err, "err\n");
        assert_eq!(ended.unwrap(), Ended::Exited(3));
        assert!(child.exit.wait().await.is_err(), "reaped once only");
    }

    #[tokio::test]
    async fn the_child_leads_its_own_group_with_stdin_empty_and_sigpipe_default() {
        // Field 5 of `stat` is the process group; SIGPIPE is bit 13 of
        // the ignored and blocked masks.
        let mut child = sh(
            "read -r _ _ _ _ group _ </proc/$$/stat; test \"$group\" = $$ || exit 10; \
             read -r line && exit 11; \
             while read -r key mask; do case $key in \
               SigIgn:|SigBlk:) [ $((0x$mask & 0x1000)) -eq 0 ] || exit 12 ;; esac; \
             done </proc/$$/status; exit 0",
            &[],
        )
        .unwrap();
        assert_eq!(child.exit.wait().await.unwrap(), Ended::Exited(0));
    }

    #[tokio::test]
    async fn a_signal_is_reported_as_such() {
        let mut child = sh("kill -TERM $$", &[]).unwrap();
        assert_eq!(
            child.exit.wait().await.unwrap(),
            Ended::Signaled(libc::SIGTERM)
        );
    }

    #[tokio::test]
    async fn without_a_pidfd_sigchld_is_the_cue() {
        // The way taken where pidfd_open is refused: forced here, as this
        // kernel has pidfds. One exits before the wait starts, one after.
        for (script, code) in [("exit 4", 4), ("sleep 0.2; exit 5", 5)] {
            let mut child = sh(script, &[]).unwrap();
            let signals =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()).unwrap();
            child.exit.watch = Some(Watch::Sigchld(signals));
            if code == 4 {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            assert_eq!(child.exit.wait().await.unwrap(), Ended::Exited(code));
        }
    }

    #[tokio::test]
    async fn what_cannot_start_is_an_error_not_a_child() {
        let missing = bare("/nonexistent/sh", "/");
        assert_eq!(missing.err().unwrap().kind(), io::ErrorKind::NotFound);
        let no_dir = bare("/bin/sh", "/nonexistent");
        assert_eq!(no_dir.err().unwrap().kind(), io::ErrorKind::NotFound);
        let nul = sh("true", &[("A", "x\0y")]);
        assert_eq!(nul.err().unwrap().kind(), io::ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn dropping_the_exit_kills_the_group() {
        let child = sh("exec sleep 30", &[]).unwrap();
        let pid = child.exit.pid();
        drop(child);
        // Once killed and reaped in the background, the pid is gone: even
        // a zombie would still answer signal 0.
        for _ in 0..500 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            if rustix::process::test_kill_process(pid).is_err() {
                return;
            }
        }
        panic!("the process outlived its dropped Exit");
    }
}
