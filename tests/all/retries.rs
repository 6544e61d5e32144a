//! Job retries: how many attempts, which failures, and the backoff between.

use serde_json::Value;

use crate::support::Kiln;

/// Fails on its first two runs and succeeds on the third, counting runs in
/// the workspace file `count`.
const SUCCEED_ON_THIRD: &str = "n=$(cat count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > count; echo attempt $n; [ $n -ge 3 ]";

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

#[test]
fn a_step_that_fails_twice_then_succeeds_runs_three_attempts_with_growing_delays() {
    let kiln = Kiln::new().pipeline(&format!(
        "
jobs:
  flaky:
    retry: {{ max: 2, backoff: 100ms }}
    steps:
      - name: try
        run: '{SUCCEED_ON_THIRD}'
"
    ));
    let out = kiln.run_with(["run", "--json"]);
    out.code(0);
    assert_eq!(kiln.read("count"), "3\n");
    let events = out.json_lines();
    let attempts: Vec<&Value> = of_type(&events, "job_started")
        .iter()
        .map(|e| &e["attempt"])
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
    let retrying = of_type(&events, "job_retrying");
    assert_eq!(retrying.len(), 2, "{out}");
    let delays: Vec<u64> = retrying
        .iter()
        .map(|e| e["delay"].as_u64().expect("delay in ms"))
        .collect();
    // backoff · 2^(n-1) plus up to 25 % jitter: 100–125 ms, then 200–250 ms.
    assert!((100..=125).contains(&delays[0]), "{delays:?}");
    assert!((200..=250).contains(&delays[1]), "{delays:?}");
    for (retry, attempt) in retrying.iter().zip([1, 2]) {
        assert_eq!(retry["attempt"], attempt);
        assert_eq!(retry["reason"], "step 1 `try` failed");
    }
    let finished = of_type(&events, "job_finished");
    assert_eq!(finished[0]["result"], "success");
    assert_eq!(finished[0]["attempts"], 3);
    // Each attempt's output is there, in order.
    let lines: Vec<&Value> = of_type(&events, "output")
        .iter()
        .map(|e| &e["line"])
        .collect();
    assert_eq!(lines, ["attempt 1", "attempt 2", "attempt 3"]);
}

#[test]
fn a_failure_retry_on_does_not_name_runs_once() {
    let kiln = Kiln::new().pipeline(
        "
jobs:
  broken:
    retry: { max: 3, backoff: 10ms, on: [timeout] }
    steps: [{ name: fail, run: 'echo x >> count; exit 1' }]
",
    );
    let out = kiln.run_with(["run", "--json"]);
    out.code(1);
    assert_eq!(kiln.read("count"), "x\n");
    let events = out.json_lines();
    assert!(of_type(&events, "job_retrying").is_empty(), "{out}");
    let finished = of_type(&events, "job_finished");
    assert_eq!(finished[0]["result"], "failed");
    assert_eq!(finished[0]["attempts"], 1);
    assert_eq!(finished[0]["reason"], "step 1 `fail` failed");
}

#[test]
fn retry_attempts_are_capped_by_max() {
    let kiln = Kiln::new().pipeline(
        "
jobs:
  broken:
    retry: { max: 1, backoff: 10ms }
    steps: [run: 'echo x >> count; exit 1']
",
    );
    let out = kiln.run_with(["run", "--json"]);
    out.code(1);
    assert_eq!(kiln.read("count"), "x\nx\n");
    let events = out.json_lines();
    assert_eq!(of_type(&events, "job_retrying").len(), 1);
    assert_eq!(of_type(&events, "job_finished")[0]["attempts"], 2);
}

#[test]
fn the_seed_retry_count_alias_retries() {
    // `retry_count: 1` is `retry: { max: 1 }` with the default 1 s backoff.
    let kiln = Kiln::new().pipeline(
        "
jobs:
  flaky:
    retry_count: 1
    steps: [run: 'if [ -e tried ]; then exit 0; fi; touch tried; exit 1']
",
    );
    let out = kiln.run_with(["run", "--json"]);
    out.code(0);
    let events = out.json_lines();
    let retrying = of_type(&events, "job_retrying");
    assert_eq!(retrying.len(), 1, "{out}");
    let delay = retrying[0]["delay"].as_u64().unwrap();
    assert!((1000..=1250).contains(&delay), "{delay}");
    assert_eq!(of_type(&events, "job_finished")[0]["attempts"], 2);
}

#[test]
fn each_attempt_starts_with_fresh_outputs() {
    // Attempt 1 writes `first`, then fails; attempt 2 writes only `second`.
    // The dependent must not see attempt 1's output.
    let out = Kiln::new()
        .pipeline(
            "
jobs:
  make:
    retry: { max: 1, backoff: 10ms }
    steps:
      - run: |
          if [ -e tried ]; then echo second=2 >> \"$KILN_OUTPUT\"; exit 0; fi
          touch tried
          echo first=1 >> \"$KILN_OUTPUT\"
          exit 1
  use:
    needs: [make]
    steps: [run: \"echo 'first=${{ needs.make.outputs.first }} second=${{ needs.make.outputs.second }}'\"]
",
        )
        .args(["run", "--json"])
        .run();
    out.code(0);
    let events = out.json_lines();
    let make = of_type(&events, "job_finished")
        .into_iter()
        .find(|e| e["name"] == "make")
        .expect("make finished");
    assert_eq!(make["outputs"], serde_json::json!([["second", "2"]]));
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "output" && e["line"] == "first= second=2"),
        "{out}"
    );
}
