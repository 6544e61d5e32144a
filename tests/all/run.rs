//! `kiln run`: exit codes, the terminal view, `--json`, `--job` and log files.

use crate::support::Kiln;

const TWO_JOBS: &str = "
name: duo
jobs:
  build:
    steps:
      - name: compile
        run: echo compiling; echo warn >&2
  test:
    needs: [build]
    steps:
      - run: echo testing
";

#[test]
fn a_successful_run_exits_0_with_prefixed_output_and_a_summary() {
    let out = Kiln::new().pipeline(TWO_JOBS).args(["run"]).run();
    out.code(0)
        .stdout_has("run 1 · duo · 2 jobs\n")
        .stdout_has("[build] ▶ started\n")
        .stdout_has("[build] ▸ compile\n")
        .stdout_has("[build] compiling\n")
        .stdout_has("[build] warn\n")
        .stdout_has("[test] testing\n")
        .stdout_has("✓ build succeeded in ")
        .stdout_has("JOB    RESULT       DURATION  ATTEMPTS\n")
        .stdout_has("\nrun 1 succeeded in ")
        .stdout_has(" · logs: kiln runs logs 1\n");
    // Jobs in dependency order.
    let build = out.stdout.find("[build] compiling").unwrap();
    let test = out.stdout.find("[test] testing").unwrap();
    assert!(build < test, "{out}");
}

#[test]
fn a_failing_run_exits_1_and_skips_dependents_with_the_reason() {
    let out = Kiln::new()
        .pipeline(
            "jobs:\n  build: { steps: [run: 'echo broken; exit 3'] }\n  test: { needs: [build], steps: [run: 'true'] }\n",
        )
        .args(["run"])
        .run();
    out.code(1)
        .stdout_has("[build] ✗ step 1 failed (exit 3) after ")
        .stdout_has("✗ build failed after ")
        .stdout_has("○ test skipped: ")
        .stdout_has("run 1 failed in ");
    let summary = out.stdout.rsplit("JOB ").next().unwrap();
    assert!(summary.contains("\nbuild  failed           "), "{out}");
    let test_row = summary
        .lines()
        .find(|l| l.starts_with("test "))
        .expect("a summary row for `test`");
    let cells: Vec<&str> = test_row.split_whitespace().collect();
    assert_eq!(cells[..4], ["test", "skipped", "-", "0"], "{out}");
    assert!(test_row.ends_with("needs `build`, which failed"), "{out}");
}

#[test]
fn step_output_is_written_to_log_files_with_safe_names() {
    let kiln = Kiln::new().pipeline(
        "jobs:\n  test:\n    strategy: { matrix: { os: [linux] } }\n    steps:\n      - name: say (it)\n        run: echo one; echo two >&2\n      - run: echo three\n",
    );
    kiln.run_with(["run"]).code(0);
    assert_eq!(
        kiln.read(".kiln/logs/1/test-os-linux/01-say-it.log"),
        "one\ntwo\n"
    );
    assert_eq!(
        kiln.read(".kiln/logs/1/test-os-linux/02-echo-three.log"),
        "three\n"
    );
}

#[test]
fn json_prints_one_event_per_line_ending_with_run_finished() {
    let out = Kiln::new().pipeline(TWO_JOBS).args(["run", "--json"]).run();
    out.code(0).stderr_is("");
    let events = out.json_lines();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"run_started"));
    assert_eq!(types.last(), Some(&"run_finished"));
    assert_eq!(events.last().unwrap()["result"], "success");
    assert_eq!(events.last().unwrap()["run"], 1);
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "output" && e["line"] == "compiling" && e["stream"] == "stdout")
    );
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "output" && e["line"] == "warn" && e["stream"] == "stderr")
    );
    assert_eq!(types.iter().filter(|t| **t == "job_finished").count(), 2);
}

#[test]
fn job_selection_runs_the_job_and_what_it_needs() {
    let out = Kiln::new()
        .pipeline(
            "jobs:\n  a: { steps: [run: 'echo A'] }\n  b: { needs: [a], steps: [run: 'echo B'] }\n  c: { steps: [run: 'echo C'] }\n",
        )
        .args(["run", "--json", "--job", "b"])
        .run();
    out.code(0);
    let started: Vec<String> = out
        .json_lines()
        .iter()
        .filter(|e| e["type"] == "job_started")
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(started, ["a", "b"]);
}

#[test]
fn an_unknown_job_is_a_usage_error() {
    Kiln::new()
        .pipeline("jobs:\n  build: { steps: [run: 'true'] }\n")
        .args(["run", "--job", "biuld"])
        .run()
        .code(2)
        .stderr_is("error: no job named `biuld` in the pipeline; did you mean `build`?\n");
}

#[test]
fn an_invalid_pipeline_is_not_run() {
    let kiln = Kiln::new().pipeline("jobs:\n  a: { stepz: [] }\n");
    kiln.run_with(["run"])
        .code(2)
        .stdout_is("")
        .stderr_has("╭─[kiln.yml:2:8]");
    assert!(
        !kiln.path(".kiln").exists(),
        "nothing is recorded for a pipeline that never ran"
    );
}

#[test]
fn vars_reach_interpolation() {
    Kiln::new()
        // `${VAR}` is kiln's in non-script fields; inside `run:` it is the shell's.
        .pipeline(
            "jobs:\n  a:\n    env: { GREETING: 'hello ${WHO:-nobody}' }\n    steps: [run: 'echo $GREETING']\n",
        )
        .args(["run", "--var", "WHO=kiln"])
        .run()
        .code(0)
        .stdout_has("[a] hello kiln\n");
}

#[test]
fn the_pipeline_in_a_hidden_folder_runs_in_the_project_root() {
    let kiln = Kiln::new().file(
        ".dcanary/pipeline.yml",
        "jobs:\n  a: { steps: [run: 'pwd > where'] }\n",
    );
    kiln.run_with(["run"]).code(0);
    let where_ = std::fs::canonicalize(kiln.path("where")).expect("step wrote in the project root");
    assert!(where_.starts_with(std::fs::canonicalize(kiln.dir()).unwrap()));
    assert!(kiln.path(".kiln/kiln.db").is_file());
}

/// The shell's own command line, as every user of the machine can read it.
const SHOW_CMDLINE: &str = "tr '\\\\0' ' ' < /proc/$$/cmdline; echo";

#[test]
fn only_a_script_written_as_is_goes_on_the_command_line() {
    // A script with `${{ }}` rendered into it may hold a secret, and
    // `/proc/<pid>/cmdline` is world-readable: it must go through a private
    // file. The pipeline's own text may be passed as `sh -e -c TEXT`.
    let out = Kiln::new()
        .pipeline(&format!(
            "jobs:\n  literal:\n    steps:\n      - run: \"{SHOW_CMDLINE}\"\n  rendered:\n    steps:\n      - run: \"echo ${{{{ secrets.TOKEN }}}} >/dev/null; {SHOW_CMDLINE}\"\n"
        ))
        .args(["run", "--secret", "TOKEN=hunter22"])
        .run();
    out.code(0);
    let line = |job: &str| {
        let prefix = format!("[{job}] ");
        out.stdout
            .lines()
            .find(|l| l.starts_with(&prefix) && l.contains("sh -e "))
            .unwrap_or_else(|| panic!("no command line from `{job}`:\n{out}"))
            .to_owned()
    };
    assert!(line("literal").contains("sh -e -c tr "), "{out}");
    let rendered = line("rendered");
    assert!(!rendered.contains(" -c "), "{rendered}");
    assert!(rendered.contains(".sh"), "{rendered}");
    assert!(!rendered.contains("hunter22"), "{rendered}");
}

#[test]
fn a_shell_that_was_missing_is_found_once_a_job_installs_it() {
    // kiln remembers where it found a shell on a PATH, but never that it
    // found none: a job may install the shell later jobs use.
    let kiln = Kiln::new();
    let bin = kiln.path("bin");
    let kiln = kiln.pipeline(&format!(
        "env:\n  PATH: {bin}:/usr/local/bin:/usr/bin:/bin\njobs:\n  early:\n    continue-on-error: true\n    steps:\n      - run: echo too early\n        shell: kiln-test-sh -e\n  install:\n    needs: [early]\n    steps:\n      - run: mkdir -p bin && ln -s \"$(command -v sh)\" bin/kiln-test-sh\n  late:\n    needs: [install]\n    steps:\n      - run: echo found it\n        shell: kiln-test-sh -e\n",
        bin = bin.display()
    ));
    let out = kiln.run_with(["run", "--jobs", "1"]);
    out.code(0)
        .stdout_has("cannot start `kiln-test-sh -e`: `kiln-test-sh` is not on the step's PATH")
        .stdout_has("[late] found it\n");
    assert!(!out.stdout.contains("[early] too early\n"), "{out}");
}

#[test]
fn an_env_value_with_a_nul_byte_fails_the_step_naming_the_variable() {
    // A process environment is NUL-terminated strings: such a value cannot
    // be passed on, and must not be cut short silently.
    let out = Kiln::new()
        .pipeline("jobs:\n  a:\n    steps:\n      - run: echo ran\n        env:\n          BAD: \"x\\0y\"\n")
        .args(["run"])
        .run();
    out.code(1).stdout_has(
        "cannot start `sh -e`: environment variable `BAD` cannot be passed to a process: its value holds a NUL byte; remove the `\\0`",
    );
    assert!(!out.stdout.contains("[a] ran"), "{out}");
}

#[test]
fn a_script_too_long_for_one_argument_goes_through_the_file() {
    // Linux caps one argument at 128 KiB; past 32 KiB the script is never
    // passed as `-c TEXT`, even when it is the pipeline's own text.
    let padding = "x".repeat(40 * 1024);
    let out = Kiln::new()
        .pipeline(&format!(
            "jobs:\n  long:\n    steps:\n      - run: |\n          # {padding}\n          tr '\\0' ' ' < /proc/$$/cmdline; echo\n"
        ))
        .args(["run"])
        .run();
    out.code(0);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("[long] ") && l.contains("sh -e "))
        .unwrap_or_else(|| panic!("no command line:\n{out}"));
    assert!(!line.contains(" -c "), "{line}");
    assert!(line.contains(".sh"), "{line}");
}
