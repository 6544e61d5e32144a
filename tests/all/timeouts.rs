//! Step, job and pipeline timeouts: what ends how, and that nothing a
//! timed-out step started survives it.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::Kiln;

/// A name no other process on the machine has: the test's pid, a clock
/// reading and a per-call counter.
fn unique_marker() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "kiln-test-marker-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Pids of live (non-zombie) processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // A zombie's cmdline reads empty, so it never matches.
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(marker))
        })
        .collect()
}

/// Waits up to `limit` for `check` to hold.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The one event of `type` for job `job` (and step `step`, if given).
fn event<'a>(events: &'a [Value], kind: &str, job: u64, step: Option<u64>) -> &'a Value {
    let found: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == kind && e["job"] == job)
        .filter(|e| step.is_none_or(|s| e["step"] == s))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {kind} for job {job}: {found:?}"
    );
    found[0]
}

#[test]
fn a_step_ignoring_sigterm_is_killed_with_its_children_at_its_timeout() {
    let marker = unique_marker();
    // A copy of `sleep` under the marker's name puts the marker into the
    // children's argv. `trap '' TERM` is inherited by them, so SIGTERM alone
    // stops nothing: only the SIGKILL after the grace period does.
    let kiln = Kiln::new()
        .pipeline(&format!(
            "
jobs:
  stubborn:
    steps:
      - name: hold
        timeout: 1s
        run: |
          cp \"$(command -v sleep)\" ./{marker}
          trap '' TERM
          ./{marker} 300 &
          ./{marker} 301
          wait
"
        ))
        .args(["run", "--json", "--grace", "200ms"]);
    let mut child = kiln.spawn();
    assert!(
        eventually(Duration::from_secs(20), || processes_with(&marker).len()
            >= 2),
        "the step's processes never appeared"
    );
    let status = child.wait().expect("kiln exits");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("piped"), &mut stdout)
        .expect("read stdout");
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(
        eventually(Duration::from_secs(1), || processes_with(&marker)
            .is_empty()),
        "processes survived the timeout: {:?}",
        processes_with(&marker)
    );
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON event"))
        .collect();
    let step = event(&events, "step_finished", 0, Some(0));
    assert_eq!(step["result"], "timed_out", "{step}");
    // Stopped at 1 s + 200 ms grace, not after 300 s.
    assert!(step["duration"].as_u64().unwrap() < 5000, "{step}");
    let job = event(&events, "job_finished", 0, None);
    assert_eq!(job["result"], "timed_out");
    assert_eq!(job["reason"], "step 1 `hold` timed out", "{job}");
}

#[test]
fn a_step_that_honours_sigterm_ends_without_waiting_for_the_grace() {
    let kiln = Kiln::new()
        .pipeline("jobs:\n  nap:\n    steps:\n      - { timeout: 500ms, run: 'sleep 60' }\n")
        .args(["run", "--json", "--grace", "30s"]);
    let started = Instant::now();
    let out = kiln.run();
    out.code(1);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited for the grace period: {:?}",
        started.elapsed()
    );
    let events = out.json_lines();
    let step = event(&events, "step_finished", 0, Some(0));
    assert_eq!(step["result"], "timed_out", "{step}");
    assert!(step["duration"].as_u64().unwrap() < 5000, "{step}");
    assert!(
        events.iter().any(|e| e["type"] == "output"
            && e["line"] == "kiln: step timed out; its processes were stopped"),
        "{out}"
    );
}

#[test]
fn a_job_timeout_stops_the_running_step_and_skips_the_rest() {
    let out = Kiln::new()
        .pipeline(
            "
jobs:
  slow:
    timeout: 1s
    steps:
      - run: 'true'
      - run: sleep 60
      - run: echo never
      - if: failure()
        run: echo cleaning up
",
        )
        .args(["run", "--json", "--grace", "200ms"])
        .run();
    out.code(1);
    let events = out.json_lines();
    let results: Vec<&Value> = (0..4)
        .map(|s| &event(&events, "step_finished", 0, Some(s))["result"])
        .collect();
    // The job's timeout bounds all of its steps: a `failure()` step after
    // it is not started (starting it only to stop it at once would make its
    // result a race).
    assert_eq!(
        results,
        ["success", "timed_out", "skipped", "timed_out"],
        "{out}"
    );
    let job = event(&events, "job_finished", 0, None);
    assert_eq!(job["result"], "timed_out");
    assert_eq!(job["reason"], "step 2 `sleep 60` timed out");
    let lines: Vec<(u64, &str)> = events
        .iter()
        .filter(|e| e["type"] == "output")
        .map(|e| (e["step"].as_u64().unwrap(), e["line"].as_str().unwrap()))
        .collect();
    assert_eq!(
        lines,
        [
            (1, "kiln: step timed out; its processes were stopped"),
            (3, "kiln: step not started: the job had timed out"),
        ]
    );
}

#[test]
fn a_pipeline_timeout_times_out_running_jobs_and_cancels_the_rest() {
    let out = Kiln::new()
        .pipeline(
            "
timeout: 1s
jobs:
  slow:
    retry: { max: 3, backoff: 100ms, on: [any] }
    steps: [run: sleep 60]
  after: { needs: [slow], steps: [run: echo after] }
  report: { needs: [slow], if: always(), steps: [run: echo report] }
",
        )
        .args(["run", "--json", "--grace", "200ms"])
        .run();
    out.code(1);
    let events = out.json_lines();
    assert_eq!(
        event(&events, "step_finished", 0, Some(0))["result"],
        "timed_out"
    );
    let slow = event(&events, "job_finished", 0, None);
    assert_eq!(slow["result"], "timed_out", "{slow}");
    // The pipeline timeout is final: no retry despite `on: [any]`.
    assert_eq!(slow["attempts"], 1, "{slow}");
    assert!(!events.iter().any(|e| e["type"] == "job_retrying"), "{out}");
    for job in [1, 2] {
        let finished = event(&events, "job_finished", job, None);
        assert_eq!(finished["result"], "cancelled", "{finished}");
        assert_eq!(finished["attempts"], 0);
        assert_eq!(
            finished["reason"],
            "the pipeline timed out before it started"
        );
    }
    assert!(
        !events
            .iter()
            .any(|e| e["type"] == "job_started" && e["job"] != 0)
    );
    assert_eq!(events.last().unwrap()["result"], "failed");
}

#[test]
fn a_timed_out_step_is_retried_when_retry_on_names_timeout() {
    let out = Kiln::new()
        .pipeline(
            "
jobs:
  flaky:
    retry: { max: 1, backoff: 10ms, on: [timeout] }
    steps:
      - name: first try hangs
        timeout: 500ms
        run: |
          if [ -e tried ]; then exit 0; fi
          touch tried
          sleep 60
",
        )
        .args(["run", "--json", "--grace", "200ms"])
        .run();
    out.code(0);
    let events = out.json_lines();
    let retrying = event(&events, "job_retrying", 0, None);
    assert_eq!(retrying["attempt"], 1);
    assert_eq!(retrying["reason"], "step 1 `first try hangs` timed out");
    let job = event(&events, "job_finished", 0, None);
    assert_eq!(job["result"], "success");
    assert_eq!(job["attempts"], 2);
}

#[test]
fn a_background_process_does_not_outlive_its_step() {
    let marker = unique_marker();
    let kiln = Kiln::new()
        .pipeline(&format!(
            "
jobs:
  a:
    steps:
      - run: |
          cp \"$(command -v sleep)\" ./{marker}
          ./{marker} 300 &
          echo $! > bg.pid
      - run: echo next
"
        ))
        .args(["run", "--json"]);
    let started = Instant::now();
    let out = kiln.run();
    out.code(0);
    // The step ends when its shell does, not when the background sleep would.
    assert!(started.elapsed() < Duration::from_secs(10), "{out}");
    assert!(kiln.read("bg.pid").trim().parse::<u32>().is_ok());
    assert!(
        eventually(Duration::from_secs(1), || processes_with(&marker)
            .is_empty()),
        "a background process survived its step: {:?}",
        processes_with(&marker)
    );
}

#[test]
fn after_a_step_timeout_only_status_function_steps_run() {
    let out = Kiln::new()
        .pipeline(
            "
jobs:
  a:
    steps:
      - { timeout: 300ms, continue-on-error: true, run: sleep 60 }
      - run: echo not after a timeout
      - { if: failure(), run: echo collecting logs }
",
        )
        .args(["run", "--json", "--grace", "100ms"])
        .run();
    out.code(1);
    let events = out.json_lines();
    let results: Vec<&Value> = (0..3)
        .map(|s| &event(&events, "step_finished", 0, Some(s))["result"])
        .collect();
    // `continue-on-error` covers failures, not timeouts.
    assert_eq!(results, ["timed_out", "skipped", "success"], "{out}");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "output" && e["line"] == "collecting logs")
    );
    assert_eq!(
        event(&events, "job_finished", 0, None)["result"],
        "timed_out"
    );
}
