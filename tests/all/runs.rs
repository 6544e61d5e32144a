//! `kiln runs list|show|logs` read back what `kiln run` recorded.

use crate::support::Kiln;

fn ran() -> Kiln {
    let kiln = Kiln::new().pipeline(
        "name: rec\njobs:\n  a: { steps: [{ name: first, run: 'echo A1' }, { name: second, run: 'echo A2' }] }\n  b: { needs: [a], steps: [run: 'echo B; exit 4'] }\n",
    );
    kiln.run_with(["run"]).code(1);
    kiln
}

#[test]
fn list_shows_every_run_newest_first() {
    let kiln = ran();
    kiln.run_with(["run", "--job", "a"]).code(0);
    let out = kiln.run_with(["runs", "list"]);
    out.code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "  RUN  PIPELINE  STATUS       STARTED     DURATION"
    );
    assert!(
        lines[1].starts_with("    2  rec       success      just now    "),
        "{out}"
    );
    assert!(
        lines[2].starts_with("    1  rec       failed       just now    "),
        "{out}"
    );
    assert_eq!(lines.len(), 3);
}

#[test]
fn show_lists_jobs_and_steps() {
    let out = ran().run_with(["runs", "show", "1"]);
    out.code(0)
        .stdout_has("run 1 · rec · failed · started just now · ")
        .stdout_has("file: kiln.yml\n")
        .stdout_has("  1. first: success ")
        .stdout_has("  2. second: success ")
        .stdout_has("  1. echo B; exit 4: failed (exit 4) ");
    assert!(
        out.stdout.contains("\na    success             1 "),
        "{out}"
    );
    assert!(
        out.stdout.contains("\nb    failed              1 "),
        "{out}"
    );
}

#[test]
fn logs_print_every_step_job_prefixed_in_order() {
    let kiln = ran();
    kiln.run_with(["runs", "logs", "1"])
        .code(0)
        .stdout_is("[a] A1\n[a] A2\n[b] B\n");
    kiln.run_with(["runs", "logs", "last", "--job", "b"])
        .code(0)
        .stdout_is("[b] B\n");
    kiln.run_with(["runs", "logs", "1", "--job", "c"])
        .code(2)
        .stderr_is("error: run 1 has no job `c`; its jobs are: a, b\n");
}

#[test]
fn an_unknown_run_is_a_clear_error() {
    let kiln = ran();
    kiln.run_with(["runs", "show", "99"])
        .code(2)
        .stderr_is("error: there is no run `99`\n");
    kiln.run_with(["runs", "logs", "nope"])
        .code(2)
        .stderr_has("`nope` is not a run number (expected e.g. `7` or `last`)");
}

#[test]
fn no_runs_yet() {
    let kiln = Kiln::new().pipeline("jobs:\n  a: { steps: [run: 'true'] }\n");
    let out = kiln.run_with(["runs", "list"]);
    out.code(0).stdout_is(&format!(
        "no runs recorded in `{}` yet\n",
        kiln.path(".kiln").display()
    ));
    assert!(
        !kiln.path(".kiln").exists(),
        "reading must not create state"
    );
}
