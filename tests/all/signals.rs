//! What happens to a run when kiln is interrupted (Ctrl-C) or killed (-9).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::support::Kiln;

/// A step that records its pid, then sleeps as that same process.
const SLEEPER: &str = "
jobs:
  nap:
    steps:
      - run: |
          echo $$ > sleeper.pid
          echo napping
          exec sleep 30
";

/// Waits until the sleeping step has written its pid.
fn sleeper_pid(kiln: &Kiln) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(kiln.path("sleeper.pid"))
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "the step never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: i32) -> bool {
    // A zombie has exited; only a running or sleeping process counts.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

fn wait_gone(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn run_status_line(kiln: &Kiln) -> String {
    let out = kiln.run_with(["runs", "list"]);
    out.code(0);
    out.stdout.lines().nth(1).unwrap_or_default().to_owned()
}

#[test]
fn ctrl_c_cancels_the_run_records_it_and_leaves_no_process() {
    let kiln = Kiln::new().pipeline(SLEEPER).args(["run"]);
    let mut child = kiln.spawn();
    let pid = sleeper_pid(&kiln);
    // The step has started; make sure kiln has printed it, too.
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    while !line.contains("napping") {
        line.clear();
        assert!(
            stdout.read_line(&mut line).expect("read") > 0,
            "kiln closed stdout early"
        );
    }
    let started = Instant::now();
    kill_process(Pid::from_child(&child), Signal::INT).expect("SIGINT");
    let status = child.wait().expect("kiln exits");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read");
    assert_eq!(status.code(), Some(1), "stdout after SIGINT:\n{rest}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "cancellation took {:?}",
        started.elapsed()
    );
    assert!(rest.contains("run 1 was cancelled in "), "{rest}");
    assert!(
        wait_gone(pid),
        "the step's sleep (pid {pid}) survived Ctrl-C"
    );
    assert!(
        run_status_line(&kiln).starts_with("    1  kiln      cancelled  "),
        "{}",
        run_status_line(&kiln)
    );
}

#[test]
fn a_run_killed_with_sigkill_shows_as_interrupted() {
    let kiln = Kiln::new().pipeline(SLEEPER).args(["run"]);
    let mut child = kiln.spawn();
    let pid = sleeper_pid(&kiln);
    // While kiln lives, the run is `running`.
    assert!(
        run_status_line(&kiln).starts_with("    1  kiln      running    "),
        "{}",
        run_status_line(&kiln)
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    assert!(
        run_status_line(&kiln).starts_with("    1  kiln      interrupted"),
        "{}",
        run_status_line(&kiln)
    );
    let show = kiln.run_with(["runs", "show", "1"]);
    show.code(0).stdout_has("· interrupted ·");
    // kill -9 gives kiln no chance to clean up; do it for the test.
    let _ = kill_process(Pid::from_raw(pid).expect("pid > 0"), Signal::KILL);
    assert!(!Path::new(&format!("/proc/{pid}/stat")).exists() || wait_gone(pid));
}

#[test]
fn ctrl_c_ends_the_running_job_and_every_pending_one_cancelled() {
    let kiln = Kiln::new()
        .pipeline(
            "
jobs:
  nap:
    steps:
      - run: |
          echo $$ > sleeper.pid
          exec sleep 30
      - { if: always(), run: echo cleanup > cleaned }
  after: { needs: [nap], steps: [run: 'true'] }
  report: { needs: [nap], if: always(), steps: [run: 'true'] }
",
        )
        .args(["run", "--json"]);
    let mut child = kiln.spawn();
    let pid = sleeper_pid(&kiln);
    kill_process(Pid::from_child(&child), Signal::INT).expect("SIGINT");
    let status = child.wait().expect("kiln exits");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("piped"), &mut stdout)
        .expect("read");
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(
        wait_gone(pid),
        "the step's sleep (pid {pid}) survived Ctrl-C"
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON event"))
        .collect();
    let finished = |name: &str| {
        events
            .iter()
            .find(|e| e["type"] == "job_finished" && e["name"] == name)
            .unwrap_or_else(|| panic!("no job_finished for `{name}`:\n{stdout}"))
    };
    assert_eq!(finished("nap")["result"], "cancelled");
    assert_eq!(
        finished("nap")["reason"],
        "step 1 `echo $$ > sleeper.pid` was cancelled"
    );
    let steps: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["type"] == "step_finished")
        .map(|e| &e["result"])
        .collect();
    // The `always()` step is not started once the run is stopping.
    assert_eq!(steps, ["cancelled", "cancelled"], "{stdout}");
    assert!(!kiln.path("cleaned").exists());
    // Pending jobs, `if: always()` included, never start.
    for name in ["after", "report"] {
        assert_eq!(finished(name)["result"], "cancelled");
        assert_eq!(finished(name)["attempts"], 0);
        assert_eq!(
            finished(name)["reason"],
            "the run was cancelled before it started"
        );
    }
    assert_eq!(events.last().unwrap()["result"], "cancelled");
}

#[test]
fn a_second_ctrl_c_kills_a_step_that_ignores_sigterm_without_waiting_for_the_grace() {
    let kiln = Kiln::new()
        .pipeline(
            "
jobs:
  stubborn:
    steps:
      - run: |
          trap '' TERM INT
          echo $$ > sleeper.pid
          while :; do sleep 1; done
",
        )
        .args(["run", "--grace", "60s"]);
    let mut child = kiln.spawn();
    let pid = sleeper_pid(&kiln);
    let kiln_pid = Pid::from_child(&child);
    kill_process(kiln_pid, Signal::INT).expect("first SIGINT");
    // The step ignores SIGTERM: the run is now waiting out the grace.
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(pid), "the step should still be in its grace period");
    let second = Instant::now();
    kill_process(kiln_pid, Signal::INT).expect("second SIGINT");
    let status = child.wait().expect("kiln exits");
    assert_eq!(status.code(), Some(1));
    assert!(
        second.elapsed() < Duration::from_secs(10),
        "the second Ctrl-C waited {:?}",
        second.elapsed()
    );
    assert!(wait_gone(pid), "the step (pid {pid}) survived two Ctrl-Cs");
}

/// The child that becomes a step's shell shares kiln's memory until it
/// execs, so it resets every signal kiln has a handler for
/// (`CAUGHT_BY_KILN` in runtime/engine/src/process/spawn.rs) before it
/// unblocks signals. Read from the step, as kiln runs: kiln catches no
/// signal outside that list.
#[test]
fn kiln_catches_no_signal_its_spawned_children_do_not_reset() {
    let kiln = Kiln::new()
        .pipeline(
            "
jobs:
  look:
    steps:
      - run: grep SigCgt /proc/$PPID/status > caught.txt
",
        )
        .args(["run"]);
    kiln.run().code(0);
    let line = kiln.read("caught.txt");
    let mask = signal_mask(&line);
    assert_ne!(mask, 0, "kiln catches Ctrl-C at least: {line:?}");
    // SIGINT, SIGTERM, SIGCHLD, SIGSEGV, SIGBUS, SIGILL, SIGFPE; and
    // glibc's own 32 and 33, whose handlers act only on glibc's threads.
    let reset_or_harmless = [2, 15, 17, 11, 7, 4, 8, 32, 33];
    for signal in 1..=64 {
        if holds(mask, signal) {
            assert!(
                reset_or_harmless.contains(&signal),
                "kiln catches signal {signal}, which a step's child does not reset before \
                 its exec: add it to CAUGHT_BY_KILN in runtime/engine/src/process/spawn.rs"
            );
        }
    }
}

/// The engine's thread blocks every signal while it clones a step's
/// process; a signal sent to kiln meanwhile (another step's `SIGCHLD`,
/// Ctrl-C) must then wait for it, not wake one of kiln's other threads for
/// nothing. So every thread but the engine's blocks the signals kiln gets,
/// and the engine's (kiln's main thread) blocks none of them while it
/// waits for the step.
#[test]
fn only_the_engine_thread_takes_the_signals_sent_to_kiln() {
    let kiln = Kiln::new()
        .pipeline(
            "
jobs:
  look:
    steps:
      - run: |
          echo $PPID > main.txt
          for task in /proc/$PPID/task/*; do
            echo \"${task##*/} $(grep SigBlk $task/status)\"
          done > masks.txt
",
        )
        .args(["run"]);
    kiln.run().code(0);
    let main: u32 = kiln.read("main.txt").trim().parse().expect("kiln's pid");
    let masks: Vec<(u32, u64)> = kiln
        .read("masks.txt")
        .lines()
        .map(|line| {
            let tid = line.split_whitespace().next().and_then(|t| t.parse().ok());
            let tid = tid.unwrap_or_else(|| panic!("cannot read a thread id in {line:?}"));
            (tid, signal_mask(line))
        })
        .collect();
    assert!(
        masks.len() >= 2 && masks.iter().any(|(tid, _)| *tid == main),
        "kiln runs an engine and an event thread: {masks:x?}"
    );
    // SIGINT, SIGTERM and SIGCHLD (the same numbers on every Linux kiln
    // builds for).
    for (tid, mask) in &masks {
        for signal in [2, 15, 17] {
            let blocked = holds(*mask, signal);
            if *tid == main {
                assert!(
                    !blocked,
                    "the engine thread blocks signal {signal}: {masks:x?}"
                );
            } else {
                assert!(blocked, "thread {tid} takes signal {signal}: {masks:x?}");
            }
        }
    }
}

/// The mask at the end of a `/proc/<pid>/status` line (`SigCgt:`,
/// `SigBlk:`…): hexadecimal, a bit per signal.
fn signal_mask(line: &str) -> u64 {
    line.split_whitespace()
        .last()
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or_else(|| panic!("cannot read a signal mask in {line:?}"))
}

/// Whether `mask` has signal `signal` (1-based, as numbered).
fn holds(mask: u64, signal: u32) -> bool {
    mask & (1 << (signal - 1)) != 0
}
