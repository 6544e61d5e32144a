//! `${{ }}` expressions and `${VAR}` variables inside fields.

use std::collections::BTreeMap;

use super::*;
use crate::StepAction;

fn script(p: &Plan, job: usize, step: usize) -> &str {
    match &p.jobs[job].steps[step].action {
        StepAction::Run { script, .. } => &script.text,
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_expression_points_into_the_string() {
    let e = try_load("jobs:\n  a:\n    steps:\n      - run: echo ${{ 1 + }}\n").unwrap_err();
    assert_eq!(e.diagnostics.len(), 1);
    let d = &e.diagnostics[0];
    assert_eq!(d.code, "bad-expression");
    assert!(
        d.message.starts_with("invalid expression: "),
        "{}",
        d.message
    );
    assert_eq!(d.span.line, 4);
    assert!(
        d.span.col > 19,
        "inside the string, after `echo ${{{{`: {}",
        d.span.col
    );
}

#[test]
fn if_with_and_without_braces() {
    let p = plan(
        "jobs:\n  a:\n    if: ${{ always() }}\n    steps:\n      - run: x\n        if: success()\n",
    );
    assert!(p.jobs[0].condition.is_some());
    assert!(p.jobs[0].steps[0].condition.is_some());
}

#[test]
fn needs_reference_must_be_in_needs() {
    assert_eq!(
        problems(
            "jobs:\n  build:\n    steps: [{run: x}]\n  rel:\n    steps: [{run: x}]\n  n:\n    needs: [build]\n    \
             if: needs.rel.result == 'success'\n    steps:\n      - run: echo ${{ needs.biuld.outputs.v }}\n"
        ),
        [
            "8:9 unknown-need `needs.rel` refers to a job that `n` does not need",
            "10:23 unknown-need `needs.biuld` refers to a job that `n` does not need"
        ]
    );
}

#[test]
fn unknown_context_matrix_key_and_step() {
    assert_eq!(
        problems(
            "jobs:\n  a:\n    steps:\n      - run: echo ${{ github.sha }}\n      - run: echo ${{ matrix.os }}\n      \
             - run: echo ${{ steps.build.outputs.x }}\n"
        ),
        [
            "4:23 unknown-context unknown context `github`",
            "5:23 unknown-matrix-key `matrix.os` is used but job `a` has no matrix",
            "6:23 unknown-step `steps.build` refers to no earlier step with `id: build` in job `a`",
        ]
    );
}

#[test]
fn variables_interpolate_with_precedence() {
    let options = LoadOptions {
        vars: BTreeMap::from([("TAG".to_owned(), "from-cli".to_owned())]),
        system_env: BTreeMap::from([
            ("HOME".to_owned(), "/home/me".to_owned()),
            ("TAG".to_owned(), "sys".to_owned()),
        ]),
    };
    let l = try_load_with(
        "env: { REG: pipeline.example, DIR: top }\njobs:\n  a:\n    env: { DIR: job }\n    image: ${REG}/app:${TAG}\n    \
         steps:\n      - run: echo ${HOME} $DIR\n        working-directory: ${DIR}/${HOME}\n        env: { LOCAL: \"${DIR}-step\" }\n",
        &options,
    )
    .unwrap_or_else(|e| panic!("{:#?}", e.diagnostics));
    let job = &l.plan.jobs[0];
    assert_eq!(
        job.image.as_ref().unwrap().text,
        "pipeline.example/app:from-cli"
    );
    assert_eq!(
        script(&l.plan, 0, 0),
        "echo ${HOME} $DIR",
        "scripts belong to the shell"
    );
    let StepAction::Run {
        working_directory, ..
    } = &job.steps[0].action
    else {
        panic!()
    };
    assert_eq!(working_directory.as_ref().unwrap().text, "job//home/me");
    assert_eq!(job.steps[0].env[0].1.text, "job-step");
}

#[test]
fn an_env_entry_may_extend_the_outer_value_of_its_own_name() {
    let options = LoadOptions {
        system_env: BTreeMap::from([("PATH".to_owned(), "/usr/bin".to_owned())]),
        ..LoadOptions::default()
    };
    let l = try_load_with(
        "env: { PATH: \"${PATH}:/opt/bin\" }\njobs:\n  a:\n    steps: [{run: x}]\n",
        &options,
    )
    .unwrap_or_else(|e| panic!("{:#?}", e.diagnostics));
    assert_eq!(l.plan.env[0].1.text, "/usr/bin:/opt/bin");
}

#[test]
fn undefined_variable_points_at_the_reference() {
    let e = try_load("jobs:\n  a:\n    image: node:${NODE_VERSION}\n    steps: [{run: x}]\n")
        .unwrap_err();
    let d = &e.diagnostics[0];
    assert_eq!(
        (d.span.line, d.span.col, d.code, d.message.as_str()),
        (
            3,
            17,
            "undefined-variable",
            "undefined variable `NODE_VERSION`"
        )
    );
    assert_eq!(
        d.help.as_deref(),
        Some("pass `--var NODE_VERSION=…` or set `NODE_VERSION` in `env:`")
    );
}
