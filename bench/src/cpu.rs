//! CPU time of a child process, split into the process itself and the
//! descendants it reaped.
//!
//! `wait4`'s rusage (and `RUSAGE_CHILDREN`) lump a process together with
//! every descendant it waited for, so for `kiln run` they would mix the
//! scheduler's own cost with the 2,000 `sh` processes it starts. Instead we
//! wait for the exit *without reaping* (`waitid(WNOWAIT)`), read the zombie's
//! `/proc/<pid>/stat` — which still holds `utime`/`stime` (the process) and
//! `cutime`/`cstime` (its reaped descendants) — and only then reap it.
//! Linux only; the resolution is one clock tick (10 ms), plenty for runs that
//! take seconds.

use std::io;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use rustix::process::{Pid, WaitId, WaitIdOptions};

/// What one measured run of a command cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    /// Wall time from spawn to exit.
    pub wall: Duration,
    /// How the process exited.
    pub status: ExitStatus,
    /// user + system CPU of the process itself (all its threads).
    pub own_cpu: Duration,
    /// user + system CPU of the descendants it reaped.
    pub children_cpu: Duration,
}

/// Spawns `cmd`, waits for it and returns its wall and CPU time.
pub fn run_measured(cmd: &mut Command) -> io::Result<Measured> {
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let raw_pid = i32::try_from(child.id()).map_err(io::Error::other)?;
    let pid = Pid::from_raw(raw_pid).ok_or_else(|| io::Error::other("child has pid 0"))?;
    rustix::process::waitid(
        WaitId::Pid(pid),
        WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
    )?;
    let wall = start.elapsed();
    let stat = std::fs::read_to_string(format!("/proc/{raw_pid}/stat"));
    // Reap before looking at the stat result so an error never leaves a zombie.
    let status = child.wait()?;
    let times = parse_stat(&stat?).ok_or_else(|| io::Error::other("unreadable /proc stat"))?;
    let tick = Duration::from_secs(1) / rustix::param::clock_ticks_per_second() as u32;
    Ok(Measured {
        wall,
        status,
        own_cpu: tick * (times[0] + times[1]),
        children_cpu: tick * (times[2] + times[3]),
    })
}

/// user + system CPU a running process has used so far (all its threads).
pub fn process_cpu(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let times = parse_stat(&stat).ok_or_else(|| io::Error::other("unreadable /proc stat"))?;
    let tick = Duration::from_secs(1) / rustix::param::clock_ticks_per_second() as u32;
    Ok(tick * (times[0] + times[1]))
}

/// [`process_cpu`] of `pid` and its live children (nginx's workers).
pub fn tree_cpu(pid: u32) -> io::Result<Duration> {
    let mut total = process_cpu(pid)?;
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if parent_of(&stat) == Some(pid) {
            total += process_cpu(child).unwrap_or_default();
        }
    }
    Ok(total)
}

/// Field 4 (ppid) of a `/proc/<pid>/stat` line.
fn parent_of(stat: &str) -> Option<u32> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

/// `[utime, stime, cutime, cstime]` in clock ticks from a `/proc/<pid>/stat`
/// line. The command name (field 2) may contain spaces and parentheses, so
/// fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<[u32; 4]> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // Field 3 (state) is the first token here, so field n is token n - 3.
    let mut fields = after_comm.split_whitespace().skip(14 - 3);
    let mut out = [0u32; 4];
    for slot in &mut out {
        *slot = fields.next()?.parse().ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_times_after_a_command_name_with_spaces_and_parens() {
        let line = "4242 (a (b) c) Z 1 4242 4242 0 -1 4194572 100 200 0 0 \
                    31 7 250 12 20 0 1 0 12345 0 0";
        assert_eq!(parse_stat(line), Some([31, 7, 250, 12]));
    }

    #[test]
    fn reads_the_parent_after_the_command_name() {
        let line = "4242 (a (b) c) S 77 4242 4242 0 -1 4194572 100 200 0 0 31 7 250 12";
        assert_eq!(parent_of(line), Some(77));
        assert_eq!(parent_of("no parens"), None);
    }

    #[test]
    fn truncated_stat_is_none() {
        assert_eq!(parse_stat("1 (x) Z 1 2 3"), None);
        assert_eq!(parse_stat("no parens"), None);
    }

    #[test]
    fn splits_own_cpu_from_reaped_children() {
        // The outer shell only waits; the inner one burns CPU. `; :` keeps
        // the outer shell from exec'ing the inner one in place.
        let busy = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done";
        let m =
            run_measured(Command::new("sh").args(["-c", &format!("sh -c '{busy}'; :")])).unwrap();
        assert!(m.status.success());
        assert!(m.children_cpu >= Duration::from_millis(50), "{m:?}");
        assert!(m.own_cpu < m.children_cpu, "{m:?}");
    }
}
