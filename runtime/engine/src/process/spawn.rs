//! Starting a step's shell, and waiting for it on a pidfd.
//!
//! Why not `std::process::Command`: it keeps a replaced environment as a
//! map, copies that map on every spawn and then builds one C string per
//! variable, and tokio wraps it once more. For a no-op step that was a
//! third of kiln's own CPU time, which decides how close kiln's scheduler
//! comes to `make -j` (docs/decisions.md, "Scheduler overhead"). Here the
//! environment becomes one block of `KEY=VALUE\0` strings per spawn.
//!
//! Why not `posix_spawn` either: glibc's child, which runs while the engine
//! thread waits for it to exec, asks the kernel about each of the 64
//! signals, checks every `dup2` target against `RLIMIT_NOFILE` twice, and
//! the parent maps and unmaps a fresh stack for it each time. That doubled
//! the time the engine was blocked per spawn (115 µs against 60 µs here).
//! So the child is cloned the way `posix_spawn` clones it (sharing kiln's
//! memory, kiln's thread suspended until it execs) and does only what a
//! step needs, in [`child_main`], by raw system calls: a process group of
//! its own, the three standard streams, the working directory, `SIGPIPE`
//! back to its default (Rust ignores it in kiln itself) and kiln's
//! handlers reset, an empty signal mask, `execve`. Its stack is kept per
//! thread for the next spawn.
//!
//! The exit is awaited on a pidfd, registered with tokio's reactor: the
//! clone itself returns it (Linux 5.2; where that is refused,
//! `pidfd_open`), and `waitid(P_PIDFD)` collects the exit (5.4; on 5.3,
//! `waitid(P_PID)`). Where pidfds cannot be polled, each `SIGCHLD` is the
//! cue to look with `waitid(P_PID)` instead. Nothing else in kiln reaps
//! this child.

use std::cell::RefCell;
use std::ffi::{CString, c_char, c_int, c_void};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

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
    /// A pidfd, readable once the process has exited (Linux 5.3 and later).
    Pidfd(AsyncFd<OwnedFd>),
    /// Where there are no pidfds (an older kernel, a seccomp filter,
    /// valgrind): every `SIGCHLD` is a cue to look.
    Sigchld(tokio::signal::unix::Signal),
}

impl Watch {
    /// Watches `pid` on `pidfd` (the clone's own), else on one opened now,
    /// else by `SIGCHLD`.
    fn new(pid: Pid, pidfd: Option<OwnedFd>) -> io::Result<Self> {
        let pidfd = match pidfd {
            Some(fd) => Ok(fd),
            None => pidfd_open(pid, PidfdFlags::NONBLOCK).map_err(io::Error::from),
        }
        .and_then(|fd| {
            // SAFETY: an `OwnedFd` stays open and names the same pidfd for
            // as long as the `AsyncFd` owns it.
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
                    let status = match waitid(WaitId::PidFd(pidfd.get_ref().as_fd()), exited) {
                        // Linux 5.3 polls pidfds but has no `P_PIDFD`.
                        Err(rustix::io::Errno::INVAL) => waitid(WaitId::Pid(pid), exited),
                        status => status,
                    };
                    match status? {
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
    // close-on-exec, so the child gets exactly the three it `dup2`s (std
    // keeps fds 0-2 open in kiln, so none of them is already in place).
    let (stdout_read, stdout_write) = pipe_with(PipeFlags::CLOEXEC)?;
    let (stderr_read, stderr_write) = pipe_with(PipeFlags::CLOEXEC)?;
    for read_end in [&stdout_read, &stderr_read] {
        fcntl_setfl(read_end, OFlags::NONBLOCK)?;
    }

    let setup = ChildSetup {
        program: program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        workdir: workdir.as_ptr(),
        stdio: [
            dev_null()?.as_raw_fd(),
            stdout_write.as_raw_fd(),
            stderr_write.as_raw_fd(),
        ],
        error: AtomicI32::new(0),
    };
    let (pid, pidfd) = clone_child(&setup)?;
    drop((stdout_write, stderr_write));
    let exit = match Watch::new(pid, pidfd) {
        Ok(watch) => Exit {
            pid,
            watch: Some(watch),
        },
        Err(e) => {
            // Without a way to wait, the process must not run unwatched.
            let _ = kill_process_group(pid, Signal::KILL);
            reap_now(pid);
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

/// Everything the child reads, prepared before the clone: the child
/// allocates nothing and takes no lock, as it shares kiln's memory (and
/// whatever state another thread left a lock in) until it execs.
struct ChildSetup {
    program: *const c_char,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
    workdir: *const c_char,
    /// The fds that become the child's 0, 1 and 2.
    stdio: [c_int; 3],
    /// The errno of the step that failed in the child; 0 if it exec'd.
    error: AtomicI32,
}

/// The signals kiln installs handlers for: Ctrl-C and termination (the
/// CLI), `SIGCHLD` (where pidfds are refused), and the faults std's stack
/// guard and wasmtime's traps catch. The child resets them before it
/// unblocks signals, so none of these handlers can run in it on kiln's
/// memory; an end-to-end test fails if kiln ever catches one not listed.
const CAUGHT_BY_KILN: [c_int; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGCHLD,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
];

/// The kernel's signal set (64 signals on every 64-bit Linux but MIPS):
/// the size the `rt_sig*` calls are given.
const KERNEL_SIGSET_SIZE: usize = std::mem::size_of::<u64>();

/// Set once a clone with `CLONE_PIDFD` was refused (gVisor, a seccomp
/// filter that allows only known flags): later spawns do not ask again.
static PIDFD_REFUSED: AtomicBool = AtomicBool::new(false);

/// Clones the child of `setup`, which has exec'd (or failed to) when this
/// returns. Gives its pid and, where the kernel has them, its pidfd.
fn clone_child(setup: &ChildSetup) -> io::Result<(Pid, Option<OwnedFd>)> {
    CHILD_STACK.with(|cell| {
        let mut slot = cell.borrow_mut();
        let stack = match &mut *slot {
            Some(stack) => stack,
            None => slot.insert(ChildStack::new()?),
        };
        let mut pidfd: c_int = -1;
        // SAFETY: every signal is blocked around the clone, glibc's own two
        // included (the raw call; `sigfillset` leaves those out), so no
        // handler of kiln's runs in the child before it has reset them.
        // `CLONE_VFORK` suspends this thread until the child has exec'd or
        // exited, so `setup`, the strings it points to and the stack
        // outlive the child's use of them, and no other spawn on this
        // thread can use the stack meanwhile. `child_main` only reads
        // `setup` and makes raw system calls.
        let pid = unsafe {
            let mut before = 0u64;
            set_signal_mask(u64::MAX, &mut before);
            let clone = |flags: c_int, pidfd: &mut c_int| {
                let pid = libc::clone(
                    child_main,
                    stack.top(),
                    libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD | flags,
                    std::ptr::from_ref(setup).cast_mut().cast::<c_void>(),
                    std::ptr::from_mut(pidfd),
                );
                (pid, io::Error::last_os_error())
            };
            let mut cloned = if PIDFD_REFUSED.load(Ordering::Relaxed) {
                clone(0, &mut pidfd)
            } else {
                clone(libc::CLONE_PIDFD, &mut pidfd)
            };
            if cloned.0 < 0
                && matches!(
                    cloned.1.raw_os_error(),
                    Some(libc::EINVAL | libc::EPERM | libc::ENOSYS)
                )
                && !PIDFD_REFUSED.swap(true, Ordering::Relaxed)
            {
                cloned = clone(0, &mut pidfd);
            }
            set_signal_mask(before, std::ptr::null_mut());
            match cloned {
                (pid, _) if pid > 0 => pid,
                (_, error) => return Err(error),
            }
        };
        // A kernel older than pidfds ignores the flag and leaves -1.
        // SAFETY: a non-negative `pidfd` is the new fd the clone returned,
        // owned by nothing else (and close-on-exec, as pidfds are).
        let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
        // `pid > 0` above, so this always holds.
        let pid = Pid::from_raw(pid).ok_or_else(|| io::Error::other("the clone gave no pid"))?;
        match setup.error.load(Ordering::Acquire) {
            0 => Ok((pid, pidfd)),
            errno => {
                // The child has exited (127) without exec'ing: reap it.
                reap_now(pid);
                Err(io::Error::from_raw_os_error(errno))
            }
        }
    })
}

/// Sets the calling thread's signal mask to `mask` (a bit per signal,
/// glibc's own two included, which its wrappers leave out) by the raw
/// system call, and stores the previous mask in `old` unless it is null.
/// Returns -1 and sets errno on failure.
///
/// # Safety
/// `old` is null or valid for writing a `u64`.
unsafe fn set_signal_mask(mask: u64, old: *mut u64) -> libc::c_long {
    // SAFETY: `mask` lives across the call; `old` as the caller promises.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::c_long::from(libc::SIG_SETMASK),
            &mask,
            old,
            KERNEL_SIGSET_SIZE,
        )
    }
}

/// Blocks every signal that is not a fault on the calling thread, so a
/// signal sent to kiln (a child's `SIGCHLD`, Ctrl-C) is delivered to the
/// thread that runs the engine. That thread blocks every signal while a
/// child is cloned; meanwhile the kernel hands a process-wide signal to any
/// other thread that has it unblocked, waking it for nothing (the default
/// action of `SIGCHLD` is to ignore it) on the core a step runs on. Blocked
/// everywhere else, the signal waits until the engine thread unblocks it.
/// Called first thing on the threads that run beside the engine in `kiln
/// run`: the event thread, tokio's blocking pool, wasm guests and their
/// epoch ticker, the Docker ping.
pub fn leave_signals_to_the_engine_thread() {
    // SAFETY: plain calls on a local set; glibc's `pthread_sigmask` never
    // blocks its own two internal signals, which must stay deliverable.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigfillset(&mut set);
        for fault in [
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGILL,
            libc::SIGFPE,
            libc::SIGTRAP,
            libc::SIGSYS,
        ] {
            libc::sigdelset(&mut set, fault);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Waits for `pid` to end and reaps it, through interruptions.
fn reap_now(pid: Pid) {
    while let Err(rustix::io::Errno::INTR) =
        rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
    {}
}

/// The cloned child: sets itself up from `setup` (a `&ChildSetup`) and
/// execs, or records why it could not and exits 127.
extern "C" fn child_main(setup: *mut c_void) -> c_int {
    // SAFETY: `clone_child` passes a `ChildSetup` that outlives the child's
    // use of it (the parent is suspended until the exec or exit).
    let setup = unsafe { &*setup.cast::<ChildSetup>() };
    // SAFETY: raw system calls on valid pointers from `setup`; on success
    // `execve` does not return.
    let errno = unsafe { set_up_and_exec(setup) };
    // Whatever failed set errno; never report success from here.
    let errno = if errno == 0 { libc::EINVAL } else { errno };
    setup.error.store(errno, Ordering::Release);
    // SAFETY: ends the child without running anything of kiln's.
    unsafe { libc::_exit(127) }
}

/// The child's work before the exec; returns only if a step failed, with
/// its errno.
///
/// Every call is a raw system call, not libc's function of that name: a
/// library preloaded to wrap `execve` or `chdir` (an exec logger,
/// fakechroot) would otherwise run in the child on kiln's memory, where an
/// allocation can deadlock on a lock another thread of kiln's holds.
///
/// # Safety
/// Only in the child of [`clone_child`], with every signal blocked.
unsafe fn set_up_and_exec(setup: &ChildSetup) -> c_int {
    // `syscall` returns -1 and sets errno (the suspended parent thread's)
    // on failure.
    let failed = |result: libc::c_long| result < 0;
    // Integers go to the variadic `syscall` as `long`, the width it reads.
    let long = libc::c_long::from;
    let errno = || unsafe { *libc::__errno_location() };
    // The kernel's `struct sigaction` for `SIG_DFL`: all zero, whatever
    // the architecture's layout (three or four words), so four zero words
    // serve every one of them.
    let default_action = [0u64; 4];
    // SAFETY: raw system calls on fds, C strings and arrays `setup` owns or
    // that live on this stack.
    unsafe {
        if failed(libc::syscall(
            libc::SYS_setpgid,
            0 as libc::c_long,
            0 as libc::c_long,
        )) {
            return errno();
        }
        for (&fd, target) in setup.stdio.iter().zip(0..) {
            // A source already in place keeps close-on-exec through a
            // `dup2` onto itself (std opens 0-2 in kiln, so it never is).
            let (fd, target) = (long(fd), long(target));
            let result = if fd == target {
                libc::syscall(libc::SYS_fcntl, fd, long(libc::F_SETFD), 0 as libc::c_long)
            } else {
                libc::syscall(libc::SYS_dup3, fd, target, 0 as libc::c_long)
            };
            if failed(result) {
                return errno();
            }
        }
        if failed(libc::syscall(libc::SYS_chdir, setup.workdir)) {
            return errno();
        }
        let reset = |signal: c_int| {
            libc::syscall(
                libc::SYS_rt_sigaction,
                long(signal),
                &default_action,
                std::ptr::null_mut::<c_void>(),
                KERNEL_SIGSET_SIZE,
            )
        };
        // Rust ignores SIGPIPE in kiln; a step gets it at its default.
        for signal in std::iter::once(libc::SIGPIPE).chain(CAUGHT_BY_KILN) {
            if failed(reset(signal)) {
                return errno();
            }
        }
        // A signal sent to kiln's process group before `setpgid` (a Ctrl-C,
        // which kiln gets too) waits here; it takes its default action,
        // not a handler some library installed in kiln, as under
        // `posix_spawn`, which resets every handled signal.
        let mut pending = 0u64;
        if failed(libc::syscall(
            libc::SYS_rt_sigpending,
            &mut pending,
            KERNEL_SIGSET_SIZE,
        )) {
            return errno();
        }
        for signal in 1..=64 {
            if pending & (1 << (signal - 1)) != 0 {
                // SIGKILL, SIGSTOP and glibc's own two refuse, and need no
                // reset: the kernel's action for the first two, glibc's
                // handlers for the others act only on its own threads.
                let _ = reset(signal);
            }
        }
        if failed(set_signal_mask(0, std::ptr::null_mut())) {
            return errno();
        }
        libc::syscall(libc::SYS_execve, setup.program, setup.argv, setup.envp);
        errno()
    }
}

thread_local! {
    /// The stack the next clone from this thread runs on: kept, as mapping
    /// a new one per spawn cost two system calls and fresh zeroed pages.
    static CHILD_STACK: RefCell<Option<ChildStack>> = const { RefCell::new(None) };
}

/// A stack for [`child_main`], with an inaccessible page below it so an
/// overflow faults rather than writes into kiln's heap.
struct ChildStack {
    base: *mut c_void,
    len: usize,
}

impl ChildStack {
    /// Far more than `child_main` and the libc calls it makes need.
    const USABLE: usize = 64 * 1024;

    fn new() -> io::Result<Self> {
        // SAFETY: a fresh private anonymous mapping, owned by the result;
        // the guard is its first page.
        unsafe {
            let page = usize::try_from(libc::sysconf(libc::_SC_PAGESIZE)).unwrap_or(4096);
            let len = Self::USABLE + page;
            let base = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let stack = Self { base, len };
            if libc::mprotect(base, page, libc::PROT_NONE) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(stack)
        }
    }

    /// The stack's highest address, where a downward-growing stack starts
    /// (page-aligned, so aligned as any ABI wants).
    fn top(&self) -> *mut c_void {
        self.base.wrapping_byte_add(self.len)
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped only here.
        unsafe { libc::munmap(self.base, self.len) };
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

    /// Each worker thread clones on a stack of its own, kept between
    /// spawns: children started at once from several threads, each many
    /// times over, must each run their own script and report their own
    /// exit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn spawns_from_many_threads_at_once_keep_to_their_own() {
        let tasks: Vec<_> = (0..8)
            .map(|task| {
                tokio::spawn(async move {
                    for round in 0..25 {
                        let code = (task * 25 + round) % 200;
                        let mut child =
                            sh(&format!("echo {task}.{round}; exit {code}"), &[]).expect("spawn");
                        let (out, ended) = tokio::join!(read_all(child.stdout), child.exit.wait());
                        assert_eq!(out, format!("{task}.{round}\n"));
                        assert_eq!(ended.unwrap(), Ended::Exited(code));
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    }

    /// Makes the kernel refuse, on this thread only, a `clone` with
    /// `CLONE_PIDFD` (EINVAL), as gVisor does: a real seccomp filter, the
    /// mechanism such sandboxes use.
    fn refuse_clone_pidfd_on_this_thread() {
        // `struct seccomp_data`: the syscall number at 0, the low half of
        // the first argument (clone's flags) at 16 (little-endian).
        const NR: u32 = 0;
        const FLAGS_LOW: u32 = 16;
        let op = |code: u32, k: u32| libc::sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        };
        let jump = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
            code: code as u16,
            jt,
            jf,
            k,
        };
        let filter = [
            op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, NR),
            jump(
                libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
                libc::SYS_clone as u32,
                0,
                3,
            ),
            op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, FLAGS_LOW),
            jump(
                libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
                libc::CLONE_PIDFD as u32,
                0,
                1,
            ),
            op(
                libc::BPF_RET | libc::BPF_K,
                libc::SECCOMP_RET_ERRNO | libc::EINVAL as u32,
            ),
            op(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
        ];
        let program = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_ptr().cast_mut(),
        };
        // SAFETY: `program` and `filter` outlive the calls, which copy them.
        unsafe {
            assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
            assert_eq!(
                libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &raw const program
                ),
                0,
                "seccomp: {}",
                io::Error::last_os_error()
            );
        }
    }

    #[cfg(all(target_os = "linux", target_endian = "little"))]
    #[test]
    fn where_a_clone_with_a_pidfd_is_refused_it_is_made_without() {
        // Its own thread: the filter stays with the thread that set it.
        std::thread::spawn(|| {
            refuse_clone_pidfd_on_this_thread();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                for code in [6, 7] {
                    let mut child = sh(&format!("echo started; exit {code}"), &[])
                        .expect("a refused CLONE_PIDFD must not fail the spawn");
                    let (out, ended) = tokio::join!(read_all(child.stdout), child.exit.wait());
                    assert_eq!(out, "started\n");
                    assert_eq!(ended.unwrap(), Ended::Exited(code));
                }
            });
        })
        .join()
        .unwrap();
        assert!(PIDFD_REFUSED.load(Ordering::Relaxed));
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
