//! `if:` on jobs and steps, `continue-on-error`, failure propagation and
//! outputs flowing between steps and jobs.

use serde_json::Value;

use crate::support::{Kiln, Output};

/// `job_finished` for the job named `name`.
#[track_caller]
fn job<'a>(events: &'a [Value], name: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["type"] == "job_finished" && e["name"] == name)
        .unwrap_or_else(|| panic!("no job_finished for `{name}`"))
}

/// Step results of job `id`, in step order.
fn step_results(events: &[Value], id: u64) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "step_finished" && e["job"] == id)
        .map(|e| e["result"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Output lines of job `id`.
fn lines(events: &[Value], id: u64) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "output" && e["job"] == id)
        .map(|e| e["line"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn run_json(yaml: &str) -> (Output, Vec<Value>) {
    let out = Kiln::new().pipeline(yaml).args(["run", "--json"]).run();
    let events = out.json_lines();
    (out, events)
}

#[test]
fn an_always_job_runs_after_a_failed_need_and_a_default_one_is_skipped_with_the_reason() {
    let (out, events) = run_json(
        "
jobs:
  a: { steps: [run: exit 1] }
  report: { needs: [a], if: always(), steps: [run: 'echo ${{ needs.a.result }}'] }
  deploy: { needs: [a], steps: [run: echo deploying] }
  later: { needs: [deploy], steps: [run: echo later] }
",
    );
    out.code(1);
    assert_eq!(job(&events, "report")["result"], "success");
    assert_eq!(lines(&events, 1), ["failure"]);
    let deploy = job(&events, "deploy");
    assert_eq!(deploy["result"], "skipped");
    assert_eq!(deploy["attempts"], 0);
    assert_eq!(deploy["reason"], "needs `a`, which failed");
    // Skips propagate with their own reason.
    assert_eq!(
        job(&events, "later")["reason"],
        "needs `deploy`, which was skipped"
    );
    assert_eq!(events.last().unwrap()["result"], "failed");
}

#[test]
fn a_failure_step_runs_only_after_a_failed_step() {
    let (out, events) = run_json(
        "
jobs:
  broken:
    steps:
      - run: exit 3
      - run: echo not reached
      - { if: failure(), run: echo cleanup after failure }
      - { if: success(), run: echo not on success }
  fine:
    steps:
      - run: 'true'
      - { if: failure(), run: echo never }
      - run: echo normal
",
    );
    out.code(1);
    assert_eq!(
        step_results(&events, 0),
        ["failed", "skipped", "success", "skipped"]
    );
    assert_eq!(lines(&events, 0), ["cleanup after failure"]);
    assert_eq!(step_results(&events, 1), ["success", "skipped", "success"]);
    assert_eq!(lines(&events, 1), ["normal"]);
    assert_eq!(job(&events, "broken")["reason"], "step 1 `exit 3` failed");
    assert_eq!(job(&events, "fine")["result"], "success");
}

#[test]
fn a_continue_on_error_step_lets_the_job_go_on_and_succeed() {
    let (out, events) = run_json(
        "
jobs:
  lint:
    steps:
      - { continue-on-error: true, run: exit 2 }
      - run: echo still here
      - { if: failure(), run: echo not a failure }
",
    );
    out.code(0);
    assert_eq!(
        step_results(&events, 0),
        ["failed_ignored", "success", "skipped"]
    );
    let exit_codes: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "step_finished")
        .map(|e| &e["exit_code"])
        .collect();
    assert_eq!(exit_codes, [&Value::from(2), &Value::from(0), &Value::Null]);
    assert_eq!(job(&events, "lint")["result"], "success");
}

#[test]
fn a_continue_on_error_job_fails_but_its_dependents_run_and_the_run_succeeds() {
    let (out, events) = run_json(
        "
jobs:
  optional: { continue-on-error: true, steps: [run: exit 1] }
  next:
    needs: [optional]
    steps: [run: 'echo ${{ needs.optional.result }}']
",
    );
    out.code(0);
    assert_eq!(job(&events, "optional")["result"], "failed");
    assert_eq!(job(&events, "next")["result"], "success");
    assert_eq!(lines(&events, 1), ["success"]);
    assert_eq!(events.last().unwrap()["result"], "success");
}

#[test]
fn a_job_skipped_by_its_own_if_leaves_the_run_successful() {
    let (out, events) = run_json(
        "
jobs:
  build: { steps: [run: 'true'] }
  deploy: { needs: [build], if: \"vars.DEPLOY == 'yes'\", steps: [run: echo deploying] }
",
    );
    out.code(0);
    let deploy = job(&events, "deploy");
    assert_eq!(deploy["result"], "skipped");
    assert_eq!(deploy["reason"], "`if: vars.DEPLOY == 'yes'` was false");
    assert_eq!(events.last().unwrap()["result"], "success");
}

#[test]
fn job_outputs_reach_dependents() {
    let (out, events) = run_json(
        "
jobs:
  a:
    steps:
      - run: |
          echo version=1.2.3 >> \"$KILN_OUTPUT\"
          echo 'spaced= keep  spaces ' >> \"$KILN_OUTPUT\"
  b:
    needs: [a]
    steps: [run: \"echo 'v=${{ needs.a.outputs.version }}|${{ needs.a.outputs.spaced }}|'\"]
",
    );
    out.code(0);
    assert_eq!(
        job(&events, "a")["outputs"],
        serde_json::json!([["version", "1.2.3"], ["spaced", " keep  spaces "]])
    );
    assert_eq!(lines(&events, 1), ["v=1.2.3| keep  spaces |"]);
}

#[test]
fn declared_job_outputs_are_rendered_from_step_outputs() {
    let (out, events) = run_json(
        "
jobs:
  a:
    outputs: { tag: 'v${{ steps.meta.outputs.version }}' }
    steps:
      - { id: meta, run: 'echo version=7 >> \"$KILN_OUTPUT\"; echo other=x >> \"$KILN_OUTPUT\"' }
  b:
    needs: [a]
    steps: [run: \"echo '${{ needs.a.outputs.tag }}/${{ needs.a.outputs.other }}'\"]
",
    );
    out.code(0);
    assert_eq!(
        job(&events, "a")["outputs"],
        serde_json::json!([["tag", "v7"]])
    );
    assert_eq!(lines(&events, 1), ["v7/"]);
}

#[test]
fn step_outputs_and_outcomes_are_visible_to_later_steps() {
    let (out, events) = run_json(
        "
jobs:
  a:
    steps:
      - { id: first, run: 'echo x=hello >> \"$KILN_OUTPUT\"' }
      - { id: shaky, continue-on-error: true, run: exit 1 }
      - run: \"echo '${{ steps.first.outputs.x }} ${{ steps.shaky.outcome }} ${{ steps.shaky.conclusion }}'\"
",
    );
    out.code(0);
    assert_eq!(lines(&events, 0), ["hello failure success"]);
}

#[test]
fn heredoc_outputs_carry_multi_line_values() {
    let (out, events) = run_json(
        "
jobs:
  a:
    steps:
      - run: |
          {
            echo 'notes<<EOF'
            echo 'line one'
            echo 'line two'
            echo 'EOF'
          } >> \"$KILN_OUTPUT\"
  b:
    needs: [a]
    env: { NOTES: '${{ needs.a.outputs.notes }}' }
    steps: [run: 'printf \"%s\\n\" \"$NOTES\"']
",
    );
    out.code(0);
    assert_eq!(
        job(&events, "a")["outputs"],
        serde_json::json!([["notes", "line one\nline two"]])
    );
    assert_eq!(lines(&events, 1), ["line one", "line two"]);
}

#[test]
fn a_malformed_output_file_fails_the_step_with_the_line() {
    let (out, events) = run_json(
        "
jobs:
  a:
    steps:
      - run: 'echo ok=1 >> \"$KILN_OUTPUT\"; echo oops >> \"$KILN_OUTPUT\"'
",
    );
    out.code(1);
    assert_eq!(step_results(&events, 0), ["failed"]);
    assert_eq!(
        lines(&events, 0),
        [
            "kiln: invalid `$KILN_OUTPUT`: line 2: expected `key=value` or `key<<DELIMITER`, found `oops`"
        ]
    );
}
