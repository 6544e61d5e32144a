//! Hostile pipeline files through the real binary: each is refused with
//! one clear error and exit 2 — never a crash, a hang or a runaway memory.
//! (Speed is the `plan` benchmark's business; these only require an
//! answer.)

use std::fmt::Write as _;

use crate::support::Kiln;

#[test]
fn a_50_mb_file_is_refused_before_it_is_read() {
    let kiln = Kiln::new();
    let path = kiln.path("kiln.yml");
    let file = std::fs::File::create(&path).expect("create");
    file.set_len(50 * 1024 * 1024)
        .expect("a sparse 50 MiB file");
    kiln.args(["validate"]).run().code(2).stderr_is(
        "error: `kiln.yml` is 52428800 bytes; pipeline files are limited to 10485760 bytes (10 MiB)\n",
    );
}

#[test]
fn an_endless_file_is_read_no_further_than_the_limit() {
    Kiln::new()
        .args(["validate", "/dev/zero"])
        .run()
        .code(2)
        .stderr_is(
            "error: `/dev/zero` is more than 10485760 bytes; pipeline files are limited to 10485760 bytes (10 MiB)\n",
        );
}

#[test]
fn a_10000_job_cycle_is_one_diagnostic_with_its_path_cut_short() {
    let mut yaml = String::from("jobs:\n");
    for i in 0..10_000 {
        let next = (i + 1) % 10_000;
        writeln!(
            yaml,
            "  j{i}: {{ needs: [j{next}], steps: [{{ run: 'true' }}] }}"
        )
        .unwrap();
    }
    let out = Kiln::new()
        .pipeline(&yaml)
        .args(["validate", "--json"])
        .run();
    out.code(2);
    let diagnostics = out.json_lines();
    let all = diagnostics[0].as_array().expect("one JSON array");
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["code"], "dependency-cycle");
    let message = all[0]["message"].as_str().expect("message");
    assert!(
        message.starts_with("dependency cycle: j") && message.contains(" → … (9991 more) → "),
        "{message}"
    );
}
