//! Secrets never reach the terminal, the JSON events or the log files, in
//! any of the forms a step might print them.

use crate::support::{Kiln, Output};

const SECRET: &str = "s3cr3t-value";
/// `printf s3cr3t-value | base64`
const SECRET_B64: &str = "czNjcjN0LXZhbHVl";

const LEAKY: &str = r#"
jobs:
  leak:
    env:
      TOKEN: ${{ secrets.TOKEN }}
    steps:
      - name: leak
        run: |
          echo "plain: $TOKEN"
          printf '%s' "$TOKEN" | base64
          printf 's3cr3'; printf 't-value\n'
          echo done
"#;

fn assert_masked(kiln: &Kiln, out: &Output) {
    out.code(0).never_shows(SECRET).never_shows(SECRET_B64);
    let log = kiln.read(".kiln/logs/1/leak/01-leak.log");
    assert!(
        !log.contains(SECRET) && !log.contains(SECRET_B64),
        "log leaks:\n{log}"
    );
    // The step really ran and printed around the secret.
    assert!(log.contains("plain: ") && log.ends_with("done\n"), "{log}");
}

#[test]
fn a_secret_from_the_command_line_is_masked_everywhere() {
    let kiln = Kiln::new().pipeline(LEAKY);
    let out = kiln.run_with(["run", "--secret", &format!("TOKEN={SECRET}")]);
    out.stdout_has("[leak] done\n");
    assert_masked(&kiln, &out);
}

#[test]
fn a_secret_from_a_file_is_masked_in_json_events() {
    let kiln = Kiln::new()
        .pipeline(LEAKY)
        .file("secrets.env", &format!("# for tests\nTOKEN=\"{SECRET}\"\n"));
    let out = kiln.run_with(["run", "--json", "--secret-file", "secrets.env"]);
    assert!(
        out.json_lines().iter().any(|e| e["line"] == "done"),
        "{out}"
    );
    assert_masked(&kiln, &out);
}

#[test]
fn a_secret_from_the_environment_is_masked() {
    let kiln = Kiln::new().pipeline(LEAKY).env("KILN_SECRET_TOKEN", SECRET);
    let out = kiln.run_with(["run"]);
    assert_masked(&kiln, &out);
}

#[test]
fn a_bad_secret_file_names_the_line_and_not_the_value() {
    Kiln::new()
        .pipeline(LEAKY)
        .file("secrets.env", &format!("TOKEN={SECRET}\n{SECRET}\n"))
        .args(["run", "--secret-file", "secrets.env"])
        .run()
        .code(2)
        .never_shows(SECRET)
        .stderr_is(
            "error: secrets.env:2: expected `KEY=VALUE`, `KEY<<EOF`, a `#` comment or a blank line\n",
        );
}

#[test]
fn a_secret_from_the_environment_reaches_only_the_steps_that_reference_it() {
    let kiln = Kiln::new()
        .pipeline(
            r#"
jobs:
  uses-it:
    steps:
      - run: |
          test "$TOKEN" = "$EXPECTED" && echo "referenced: yes"
        env:
          TOKEN: ${{ secrets.TOKEN }}
          EXPECTED: s3cr3t-value
  unrelated:
    steps:
      - name: looks around
        run: |
          env | grep -c s3cr3t || true
          echo "KILN_SECRET_TOKEN=${KILN_SECRET_TOKEN-unset}"
"#,
        )
        .env("KILN_SECRET_TOKEN", SECRET);
    let out = kiln.run_with(["run"]);
    out.code(0)
        .stdout_has("[uses-it] referenced: yes\n")
        .stdout_has("[unrelated] 0\n")
        .stdout_has("[unrelated] KILN_SECRET_TOKEN=unset\n");
}

#[test]
fn an_environment_variable_that_is_not_utf8_is_left_out_of_steps() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let kiln = Kiln::new().pipeline(
        r#"
jobs:
  build:
    steps:
      - run: |
          echo "ok: $KILN_TEST_PLAIN"
"#,
    );
    let out = kiln
        .command(["run"])
        .env("KILN_TEST_PLAIN", "plain")
        .env(
            OsStr::from_bytes(b"KILN_TEST_BINARY"),
            OsStr::from_bytes(b"\xff\xfe"),
        )
        .output()
        .expect("kiln starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("[build] ok: plain\n"), "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
