//! The dispatcher as a user sees it: independent jobs overlap, `--jobs`
//! bounds how many run at once, and `needs` orders them.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::Kiln;

const TWO_SLEEPERS: &str = "
jobs:
  a: { steps: [run: 'sleep 1'] }
  b: { steps: [run: 'sleep 1'] }
";

/// `(type, job)` for every event of the given types, in stream order.
fn timeline(events: &[Value], types: &[&str]) -> Vec<(String, u64)> {
    events
        .iter()
        .filter(|e| types.contains(&e["type"].as_str().unwrap_or("")))
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_owned(),
                e["job"].as_u64().expect("a job event names its job"),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, u64)]) -> Vec<(String, u64)> {
    list.iter().map(|(t, j)| ((*t).to_owned(), *j)).collect()
}

#[test]
fn independent_jobs_run_at_the_same_time() {
    let kiln = Kiln::new()
        .pipeline(TWO_SLEEPERS)
        .args(["run", "--json", "--jobs", "2"]);
    let started = Instant::now();
    let out = kiln.run();
    let elapsed = started.elapsed();
    out.code(0);
    // Two 1 s sleeps one after the other take 2 s; overlapping, about 1 s.
    // The bound is coarse on purpose: it asserts overlap, not speed.
    assert!(
        elapsed < Duration::from_millis(1800),
        "took {elapsed:?}\n{out}"
    );
    // Both steps start before either finishes.
    let steps = timeline(&out.json_lines(), &["step_started", "step_finished"]);
    let first_finish = steps
        .iter()
        .position(|(t, _)| t == "step_finished")
        .expect("a step finished");
    assert_eq!(first_finish, 2, "{steps:?}");
}

#[test]
fn jobs_1_runs_one_job_at_a_time() {
    let out = Kiln::new()
        .pipeline(TWO_SLEEPERS)
        .args(["run", "--json", "--jobs", "1"])
        .run();
    out.code(0);
    let steps = timeline(&out.json_lines(), &["step_started", "step_finished"]);
    assert_eq!(
        steps,
        pairs(&[
            ("step_started", 0),
            ("step_finished", 0),
            ("step_started", 1),
            ("step_finished", 1),
        ])
    );
}

#[test]
fn a_chain_runs_in_dependency_order() {
    // Declared out of order, so plan order alone cannot pass the test.
    let kiln = Kiln::new().pipeline(
        "
jobs:
  third: { needs: [second], steps: [run: 'echo 3 >> order'] }
  second: { needs: [first], steps: [run: 'echo 2 >> order'] }
  first: { steps: [run: 'sleep 0.2; echo 1 >> order'] }
",
    );
    let out = kiln.run_with(["run", "--json", "--jobs", "4"]);
    out.code(0);
    assert_eq!(kiln.read("order"), "1\n2\n3\n");
    let events = out.json_lines();
    let names: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["type"] == "job_started" || e["type"] == "job_finished")
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_owned(),
                e["name"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("job_started", "first"),
        ("job_finished", "first"),
        ("job_started", "second"),
        ("job_finished", "second"),
        ("job_started", "third"),
        ("job_finished", "third"),
    ]
    .iter()
    .map(|(t, n)| ((*t).to_owned(), (*n).to_owned()))
    .collect();
    assert_eq!(names, expected, "{out}");
}

#[test]
fn a_job_waits_for_all_of_its_needs() {
    // `join` needs a fast and a slow job: it must not start after the fast
    // one alone.
    let kiln = Kiln::new().pipeline(
        "
jobs:
  fast: { steps: [run: 'echo fast >> order'] }
  slow: { steps: [run: 'sleep 0.5; echo slow >> order'] }
  join: { needs: [fast, slow], steps: [run: 'echo join >> order'] }
",
    );
    kiln.run_with(["run", "--jobs", "3"]).code(0);
    assert_eq!(kiln.read("order"), "fast\nslow\njoin\n");
}
