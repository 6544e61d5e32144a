//! The pipelines in `examples/` are what a newcomer runs first: they must
//! keep validating, and `hello` (the README's first command) must run.

use std::path::Path;

use crate::support::Kiln;

fn example(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_hello_example_runs_every_job_as_the_readme_shows() {
    let kiln = Kiln::new().pipeline(&example("hello/kiln.yml"));
    let out = kiln.run_with(["run"]);
    out.code(0)
        .stdout_has("[prepare] hello, world: preparing\n")
        .stdout_has("`if: vars.DEPLOY == 'yes'` was false")
        .stdout_has("run 1 succeeded");
    kiln.run_with(["runs", "show", "last"])
        .code(0)
        .stdout_has("talk to a flaky service [attempt 2]: success");
}

#[test]
fn the_seed_pipeline_example_validates() {
    Kiln::new()
        .file(".dcanary/pipeline.yml", &example("dcanary/pipeline.yml"))
        .args(["validate"])
        .run()
        .code(0);
}
