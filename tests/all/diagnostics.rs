//! How `kiln validate` shows problems to people and programs.

use crate::support::Kiln;

const BROKEN: &str = "\
name: demo
jobs:
  build:
    stepz:
      - run: echo hi
";

#[test]
fn human_output_is_a_code_frame_with_file_line_col_and_help() {
    Kiln::new()
        .pipeline(BROKEN)
        .args(["validate"])
        .run()
        .code(2)
        .stdout_is("")
        .stderr_has("  × unknown field `stepz` in job `build`\n   ╭─[kiln.yml:4:5]\n")
        .stderr_has(" 4 │     stepz:\n   ·     ──┬──\n   ·       ╰── unknown field\n")
        .stderr_has("  help: did you mean `steps`?\n")
        .stderr_has("  × job `build` has no steps\n   ╭─[kiln.yml:3:3]\n")
        .stderr_has("error: `kiln.yml` has 2 errors\n");
}

#[test]
fn json_output_is_one_array_of_every_diagnostic() {
    let out = Kiln::new()
        .pipeline(BROKEN)
        .args(["validate", "--json"])
        .run();
    out.code(2).stderr_is("");
    let value: serde_json::Value = serde_json::from_str(&out.stdout).expect("stdout is JSON");
    assert_eq!(
        value,
        serde_json::json!([
            {
                "code": "empty-steps", "severity": "error", "file": "kiln.yml",
                "line": 3, "col": 3, "label": null,
                "message": "job `build` has no steps",
                "help": "add `steps:` with at least one `run:` or `uses:` step",
            },
            {
                "code": "unknown-field", "severity": "error", "file": "kiln.yml",
                "line": 4, "col": 5, "label": "unknown field",
                "message": "unknown field `stepz` in job `build`",
                "help": "did you mean `steps`?",
            },
        ])
    );
}

#[test]
fn a_clean_file_gives_a_summary_line_or_an_empty_array() {
    let kiln = Kiln::new().pipeline(
        "jobs:\n  a: { steps: [run: 'true'] }\n  b: { needs: [a], steps: [run: 'true'] }\n",
    );
    kiln.run_with(["validate"])
        .code(0)
        .stdout_is("✓ kiln.yml: 2 jobs, 2 levels\n")
        .stderr_is("");
    kiln.run_with(["validate", "--json"])
        .code(0)
        .stdout_is("[]\n");
}

#[test]
fn the_default_file_names_are_tried_in_order() {
    Kiln::new()
        .file(
            ".dcanary/pipeline.yml",
            "jobs:\n  a: { steps: [run: 'true'] }\n",
        )
        .args(["validate"])
        .run()
        .code(0)
        .stdout_is("✓ .dcanary/pipeline.yml: 1 job, 1 level\n");
    Kiln::new()
        .args(["validate"])
        .run()
        .code(2)
        .stderr_is(
            "error: no pipeline file found: tried `kiln.yml`, `.kiln.yml`, `.dcanary/pipeline.yml` in the current directory\n",
        );
}

#[test]
fn an_unreadable_file_names_the_path_and_the_cause() {
    Kiln::new()
        .args(["validate", "missing.yml"])
        .run()
        .code(2)
        .stderr_is("error: cannot read `missing.yml`\n  caused by: No such file or directory (os error 2)\n");
}

#[test]
fn usage_errors_exit_2() {
    Kiln::new()
        .args(["frobnicate"])
        .run()
        .code(2)
        .stderr_has("unrecognized subcommand 'frobnicate'");
    Kiln::new()
        .args(["run", "--var", "no-equals"])
        .run()
        .code(2)
        .stderr_has(
            "invalid value 'no-equals' for '--var <K=V>': expected `KEY=VALUE`, got `no-…`",
        );
}

#[test]
fn a_misspelt_container_setting_gets_a_code_frame_and_a_suggestion() {
    Kiln::new()
        .pipeline("jobs:\n  a:\n    image: busybox\n    container: { network: brige }\n    steps: [run: 'true']\n")
        .args(["validate"])
        .run()
        .code(2)
        .stderr_has("  × unknown value `brige` for `container.network`\n   ╭─[kiln.yml:4:27]\n")
        .stderr_has("  help: did you mean `bridge`?\n");
}
