use super::*;
use crate::JobId;

fn chain(n: usize, close: bool) -> String {
    let mut yaml = String::from("jobs:\n");
    for i in 0..n {
        yaml.push_str(&format!("  j{i}:\n    steps: [{{run: x}}]\n"));
        if i > 0 {
            yaml.push_str(&format!("    needs: [j{}]\n", i - 1));
        } else if close {
            yaml.push_str(&format!("    needs: [j{}]\n", n - 1));
        }
    }
    yaml
}

#[test]
fn unknown_job_with_and_without_suggestion() {
    assert_eq!(
        problems(
            "jobs:\n  build:\n    steps: [{run: x}]\n  test:\n    needs: [biuld, zebra]\n    steps: [{run: y}]\n"
        ),
        [
            "5:13 unknown-job job `test` needs `biuld`, which does not exist",
            "5:20 unknown-job job `test` needs `zebra`, which does not exist"
        ]
    );
    let e = try_load("jobs:\n  build:\n    steps: [{run: x}]\n  test:\n    needs: [biuld]\n    steps: [{run: y}]\n").unwrap_err();
    assert_eq!(
        e.diagnostics[0].help.as_deref(),
        Some("did you mean `build`?")
    );
}

#[test]
fn self_dependency() {
    assert_eq!(
        problems("jobs:\n  a:\n    needs: a\n    steps: [{run: x}]\n"),
        ["3:12 self-dependency job `a` needs itself"]
    );
}

#[test]
fn cycle_is_reported_once_with_its_path() {
    let e = try_load(
        "jobs:\n  a:\n    needs: [c]\n    steps: [{run: x}]\n  b:\n    needs: [a]\n    steps: [{run: x}]\n  \
         c:\n    needs: [b]\n    steps: [{run: x}]\n  d:\n    needs: [a]\n    steps: [{run: x}]\n",
    )
    .unwrap_err();
    assert_eq!(e.diagnostics.len(), 1);
    let d = &e.diagnostics[0];
    assert_eq!(d.code, "dependency-cycle");
    assert_eq!(d.message, "dependency cycle: a → c → b → a");
    assert_eq!((d.span.line, d.span.col), (6, 13));
    assert_eq!(
        d.label.as_deref(),
        Some("`b` needs `a`, which closes the cycle")
    );
}

#[test]
fn two_separate_cycles_are_two_diagnostics() {
    assert_eq!(
        problems(
            "jobs:\n  a:\n    needs: [b]\n    steps: [{run: x}]\n  b:\n    needs: [a]\n    steps: [{run: x}]\n  \
             c:\n    needs: [d]\n    steps: [{run: x}]\n  d:\n    needs: [c]\n    steps: [{run: x}]\n"
        ),
        [
            "6:13 dependency-cycle dependency cycle: a → b → a",
            "12:13 dependency-cycle dependency cycle: c → d → c"
        ]
    );
}

#[test]
fn ten_thousand_job_cycle_is_one_abbreviated_diagnostic() {
    let e = try_load(&chain(10_000, true)).unwrap_err();
    assert_eq!(e.diagnostics.len(), 1);
    assert_eq!(
        e.diagnostics[0].message,
        "dependency cycle: j0 → j9999 → j9998 → j9997 → j9996 → … (9991 more) → j4 → j3 → j2 → j1 → j0"
    );
}

#[test]
fn ten_thousand_job_chain_plans_without_recursion() {
    let p = plan(&chain(10_000, false));
    assert_eq!(p.levels.len(), 10_000);
    assert_eq!(p.critical_path.len(), 10_000);
    assert_eq!(p.critical_path[9_999], JobId(9_999));
}

#[test]
fn levels_critical_path_and_graph() {
    let p = plan(
        "jobs:\n  test:\n    needs: [build]\n    steps: [{run: x}]\n  build:\n    steps: [{run: x}]\n  \
         lint:\n    steps: [{run: x}]\n  ship:\n    needs: [test, lint]\n    steps: [{run: x}]\n",
    );
    assert_eq!(names(&p), ["test", "build", "lint", "ship"]);
    assert_eq!(
        p.levels,
        vec![vec![JobId(1), JobId(2)], vec![JobId(0)], vec![JobId(3)]]
    );
    assert_eq!(p.critical_path, [JobId(1), JobId(0), JobId(3)]);
    assert_eq!(p.graph.node_count(), 4);
    assert_eq!(p.graph.edge_count(), 3);
}

#[test]
fn matrix_jobs_expand_and_needs_cover_every_instance() {
    let p = plan(
        "jobs:\n  test:\n    strategy:\n      matrix:\n        os: [linux, mac]\n        shard: [1, 2]\n        \
         exclude: [{os: mac, shard: 2}]\n    steps: [{run: \"t ${{ matrix.shard }}\"}]\n  \
         ship:\n    needs: test\n    steps: [{run: x}]\n",
    );
    assert_eq!(
        names(&p),
        [
            "test (os=linux, shard=1)",
            "test (os=linux, shard=2)",
            "test (os=mac, shard=1)",
            "ship"
        ]
    );
    assert_eq!(p.jobs[0].key, "test");
    assert_eq!(p.jobs[0].matrix["shard"], serde_json::json!(1));
    assert_eq!(p.jobs[3].needs, [JobId(0), JobId(1), JobId(2)]);
}

#[test]
fn matrix_too_large() {
    assert_eq!(
        problems(
            "jobs:\n  t:\n    strategy:\n      matrix: {a: [1,2,3,4,5,6,7,8,9,10], b: [1,2,3,4,5,6,7,8,9,10], c: [1,2,3]}\n    \
             steps: [{run: x}]\n"
        ),
        ["4:15 matrix-too-large the matrix of job `t` expands to 300 jobs; the limit is 256"]
    );
}

#[test]
fn select_takes_a_job_and_what_it_needs() {
    let p = plan(
        "jobs:\n  build:\n    steps: [{run: x}]\n  lint:\n    steps: [{run: x}]\n  test:\n    needs: [build]\n    \
         strategy: {matrix: {n: [1, 2]}}\n    steps: [{run: x}]\n  ship:\n    needs: [test, lint]\n    steps: [{run: x}]\n",
    );
    let s = p.select(&["test".to_owned()]).unwrap();
    assert_eq!(names(&s), ["build", "test (n=1)", "test (n=2)"]);
    assert_eq!(s.jobs[2].needs, [JobId(0)]);
    assert_eq!(s.levels, vec![vec![JobId(0)], vec![JobId(1), JobId(2)]]);
    let one = p.select(&["test (n=2)".to_owned()]).unwrap();
    assert_eq!(names(&one), ["build", "test (n=2)"]);
    let err = p.select(&["tset".to_owned()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no job named `tset` in the pipeline; did you mean `test`?"
    );
    assert_eq!(
        err.available,
        ["build", "lint", "test", "ship", "test (n=1)", "test (n=2)"]
    );
}
