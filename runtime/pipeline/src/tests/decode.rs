use std::time::Duration;

use super::*;
use crate::{RetryOn, StepAction};

#[test]
fn minimal_pipeline_takes_the_file_stem_as_name() {
    let p = plan("jobs:\n  build:\n    steps:\n      - run: make\n");
    assert_eq!(p.name, "pipeline");
    assert_eq!(names(&p), ["build"]);
    let step = &p.jobs[0].steps[0];
    assert_eq!(step.name, "make");
    let StepAction::Run {
        shell,
        working_directory,
        ..
    } = &step.action
    else {
        panic!("{:?}", step.action)
    };
    assert_eq!(shell, &["sh", "-e"]);
    assert!(working_directory.is_none());
}

#[test]
fn unknown_field_suggests_or_lists() {
    let err = try_load("jobs:\n  a:\n    stpes: []\n    zzz: 1\n").unwrap_err();
    let d: Vec<_> = err
        .diagnostics
        .iter()
        .filter(|d| d.code == "unknown-field")
        .collect();
    assert_eq!(d[0].message, "unknown field `stpes` in job `a`");
    assert_eq!(d[0].help.as_deref(), Some("did you mean `steps`?"));
    assert_eq!(d[1].message, "unknown field `zzz` in job `a`");
    assert!(
        d[1].help
            .as_deref()
            .unwrap()
            .starts_with("valid fields are: name, needs, if, env,"),
        "{:?}",
        d[1].help
    );
}

#[test]
fn wrong_types_name_what_was_expected_and_found() {
    assert_eq!(
        problems(
            "jobs:\n  a:\n    needs: {b: 1}\n    steps: [{run: x}]\n  b:\n    steps: [{run: y}]\n"
        ),
        ["3:12 wrong-type expected a list of job names for `needs`, found a mapping"]
    );
    assert_eq!(
        problems("- a\n"),
        ["1:1 wrong-type expected a mapping at the top of the pipeline, found a list"]
    );
    assert_eq!(
        problems("jobs:\n  a:\n    continue-on-error: \"true\"\n    steps: [{run: x}]\n"),
        ["3:24 wrong-type expected `true` or `false` for `continue-on-error`, found a string"]
    );
}

#[test]
fn a_string_is_a_list_of_one_need() {
    let p = plan("jobs:\n  a:\n    steps: [{run: x}]\n  b:\n    needs: a\n    steps: [{run: y}]\n");
    assert_eq!(p.jobs[1].needs, [crate::JobId(0)]);
}

#[test]
fn empty_and_missing_steps() {
    assert_eq!(
        problems("jobs:\n  a:\n    steps: []\n  b:\n    name: B\n"),
        [
            "3:12 empty-steps job `a` has no steps",
            "4:3 empty-steps job `b` has no steps"
        ]
    );
}

#[test]
fn empty_file_and_missing_jobs() {
    assert_eq!(problems(""), ["1:1 empty-pipeline the file is empty"]);
    assert_eq!(
        problems("name: x\n"),
        ["1:1 missing-field the pipeline has no `jobs`"]
    );
    assert_eq!(
        problems("jobs: {}\n"),
        ["1:7 empty-jobs `jobs` has no jobs"]
    );
}

#[test]
fn step_needs_exactly_one_action() {
    assert_eq!(
        problems("jobs:\n  a:\n    steps:\n      - name: x\n      - run: a\n        uses: b\n"),
        [
            "4:9 invalid-step this step has neither `run` nor `uses`",
            "5:9 invalid-step this step has both `run` and `uses`; a step does one thing"
        ]
    );
}

#[test]
fn invalid_job_names() {
    assert_eq!(
        problems("jobs:\n  9lives:\n    steps: [{run: x}]\n"),
        ["2:3 invalid-name invalid job name `9lives`"]
    );
}

#[test]
fn timeouts_in_seconds_or_duration_strings() {
    let p = plan(
        "timeout: 1h30m\njobs:\n  a:\n    timeout: 30\n    steps:\n      - run: x\n        timeout: 500ms\n  \
         b:\n    timeout-minutes: 5\n    steps: [{run: y}]\n",
    );
    assert_eq!(p.timeout, Some(Duration::from_secs(5400)));
    assert_eq!(p.jobs[0].timeout, Some(Duration::from_secs(30)));
    assert_eq!(p.jobs[0].steps[0].timeout, Some(Duration::from_millis(500)));
    assert_eq!(p.jobs[1].timeout, Some(Duration::from_secs(300)));
}

#[test]
fn timeouts_out_of_range() {
    assert_eq!(
        problems(
            "timeout: 73h\njobs:\n  a:\n    timeout: 0s\n    steps:\n      - run: x\n        timeout: soon\n"
        ),
        [
            "1:10 out-of-range `timeout` must be greater than 0 and at most 72h, found 73h",
            "4:14 out-of-range `timeout` must be greater than 0 and at most 72h, found 0s",
            "7:18 invalid-duration invalid duration `soon` for `timeout`",
        ]
    );
}

#[test]
fn retry_policy_and_its_ranges() {
    let p = plan(
        "jobs:\n  a:\n    retry: { max: 2, backoff: 5s, max-backoff: 1m, on: [timeout, infrastructure] }\n    \
         steps: [{run: x}]\n  b:\n    retry_count: 3\n    steps: [{run: y}]\n",
    );
    let r = &p.jobs[0].retry;
    assert_eq!(r.max_attempts, 3, "max: 2 retries = 3 attempts");
    assert_eq!(r.backoff, Duration::from_secs(5));
    assert_eq!(r.max_backoff, Duration::from_secs(60));
    assert_eq!(r.on, [RetryOn::Timeout, RetryOn::Infrastructure]);
    assert_eq!(
        p.jobs[1].retry.max_attempts, 4,
        "retry_count: 3 = 4 attempts"
    );
    assert_eq!(
        problems(
            "jobs:\n  a:\n    retry: { max: 11, backoff: 61m, on: any-error }\n    steps: [{run: x}]\n"
        ),
        [
            "3:19 out-of-range `retry.max` must be between 0 and 10, found 11",
            "3:32 out-of-range `retry.backoff` must be at most 1h, found 1h1m",
            "3:41 invalid-value unknown failure kind `any-error` in `retry.on`",
        ]
    );
}

#[test]
fn seed_aliases() {
    let p = plan(
        "global_env: { A: \"1\" }\nstages:\n  build:\n    steps:\n      - script:\n          - make\n          - make install\n        \
         environment: { B: \"2\" }\n        working_directory: src\n  test:\n    depends_on: [build]\n    environment: { C: \"3\" }\n    \
         steps: [{script: make test}]\n",
    );
    assert_eq!(p.env[0].0, "A");
    let job = &p.jobs[0];
    let StepAction::Run {
        script,
        working_directory,
        ..
    } = &job.steps[0].action
    else {
        panic!()
    };
    assert_eq!(script.text, "make\nmake install");
    assert_eq!(
        working_directory.as_ref().map(|t| t.text.as_str()),
        Some("src")
    );
    assert_eq!(job.steps[0].env[0].0, "B");
    assert_eq!(p.jobs[1].needs, [crate::JobId(0)]);
    assert_eq!(p.jobs[1].env[0].0, "C");
}

#[test]
fn two_spellings_of_one_field_conflict() {
    assert_eq!(
        problems(
            "jobs:\n  a:\n    steps: [{run: x}]\n  b:\n    needs: [a]\n    depends_on: [a]\n    steps: [{run: y}]\n"
        ),
        ["6:5 conflicting-fields `depends_on` and `needs` set the same field; keep one"]
    );
}

#[test]
fn seed_features_parse_with_warnings() {
    let yaml = "stages:\n  build:\n    executor: node-18\n    environment: staging\n    manual_approval: true\n    \
                artifacts: {app: dist}\n    steps:\n      - checkout: latest\n      - artifact: dist/\n      - run: make\n";
    assert_eq!(
        warnings(yaml),
        [
            "3:5 not-yet-supported `executor` is not supported yet and is ignored; kiln runs a job in a container when it has `image:`",
            "4:5 not-yet-supported the deployment `environment` is not supported yet and is ignored; describe the rollout with a `deploy:` job (docs/deploy.md)",
            "5:5 not-yet-supported `manual_approval` is not supported yet and is ignored; use `approval: manual` under `deploy:`",
            "8:9 not-yet-supported `checkout` steps are not supported yet: kiln runs jobs in the workspace that holds the pipeline, so the code is already there; remove the step",
        ]
    );
    let p = plan(yaml);
    let StepAction::UploadArtifact { name, path } = &p.jobs[0].steps[1].action else {
        panic!()
    };
    assert_eq!((name.as_str(), path.as_str()), ("dist", "dist/"));
    assert_eq!(p.jobs[0].artifacts[0].name, "app");
}

#[test]
fn the_seed_example_loads() {
    let text = include_str!("../../../../tests/fixtures/valid/dcanary.yml");
    let loaded = try_load(text).unwrap_or_else(|e| panic!("{:#?}", e.diagnostics));
    assert_eq!(loaded.plan.name, "Full CI/CD Pipeline");
    assert_eq!(
        names(&loaded.plan),
        [
            "build",
            "security",
            "deploy_staging",
            "integration_tests",
            "deploy_production"
        ]
    );
    assert_eq!(loaded.plan.levels.len(), 5);
    assert!(
        loaded
            .warnings
            .iter()
            .all(|w| w.code == "not-yet-supported")
    );
    // executor ×3, environment ×2, manual_approval, checkout; the
    // artifact steps are real now.
    assert_eq!(loaded.warnings.len(), 7);
    let StepAction::DownloadArtifact { name } = &loaded.plan.jobs[1].steps[0].action else {
        panic!("{:?}", loaded.plan.jobs[1].steps[0].action)
    };
    assert_eq!(name, "dist");
}

#[test]
fn anchors_and_merge_keys_build_jobs() {
    let p = plan(
        "x-defaults: &d\n  timeout: 10m\n  steps: [{run: make}]\njobs:\n  a:\n    <<: *d\n  b:\n    <<: *d\n    timeout: 20m\n",
    );
    assert_eq!(p.jobs[0].timeout, Some(Duration::from_secs(600)));
    assert_eq!(p.jobs[1].timeout, Some(Duration::from_secs(1200)));
    assert_eq!(p.jobs[1].steps[0].name, "make");
}

#[test]
fn a_problem_inside_an_aliased_block_is_reported_for_each_job_using_it() {
    assert_eq!(
        problems(
            "x-d: &d\n  stpes: [{run: make}]\njobs:\n  a:\n    <<: *d\n    steps: [{run: x}]\n  b:\n    <<: *d\n    steps: [{run: y}]\n"
        ),
        [
            "2:3 unknown-field unknown field `stpes` in job `a`",
            "2:3 unknown-field unknown field `stpes` in job `b`"
        ]
    );
}

#[test]
fn shells_and_defaults() {
    let p = plan(
        "defaults: { run: { shell: bash } }\njobs:\n  a:\n    defaults: { run: { working-directory: web } }\n    steps:\n      \
         - run: x\n      - run: y\n        shell: python3 -u\n",
    );
    let StepAction::Run {
        shell,
        working_directory,
        ..
    } = &p.jobs[0].steps[0].action
    else {
        panic!()
    };
    assert_eq!(shell, &["bash", "-e"]);
    assert_eq!(working_directory.as_ref().unwrap().text, "web");
    let StepAction::Run { shell, .. } = &p.jobs[0].steps[1].action else {
        panic!()
    };
    assert_eq!(shell, &["python3", "-u"]);
}

#[test]
fn uses_steps_keep_inputs_and_permissions() {
    let p = plan(
        "jobs:\n  a:\n    steps:\n      - uses: kiln/notify@1\n        with: { url: \"http://127.0.0.1:9000\", n: 3 }\n        \
         permissions: { fs: write, network: [\"127.0.0.1:9000\"], secrets: TOKEN }\n",
    );
    let StepAction::Uses {
        reference,
        with,
        permissions,
        spans,
    } = &p.jobs[0].steps[0].action
    else {
        panic!()
    };
    assert_eq!(reference, "kiln/notify@1");
    assert_eq!(with[1].0, "n");
    assert_eq!(with[1].1.text, "3");
    assert_eq!(permissions.fs, crate::FsAccess::Write);
    assert_eq!(permissions.network, ["127.0.0.1:9000"]);
    assert_eq!(permissions.secrets, ["TOKEN"]);
    assert_eq!((spans.reference.line, spans.reference.col), (4, 15));
    assert_eq!(
        spans
            .with
            .iter()
            .map(|(k, s)| (k.as_str(), s.line, s.col))
            .collect::<Vec<_>>(),
        [("url", 5, 17), ("n", 5, 47)]
    );
    assert_eq!(spans.permissions.map(|s| (s.line, s.col)), Some((6, 9)));
    assert_eq!(p.jobs[0].steps[0].name, "kiln/notify@1");
}
