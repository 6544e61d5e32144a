//! On a terminal, `kiln run` draws a live progress view (a spinner line per
//! running job, drawn by indicatif) and colours its output. `script` (from
//! util-linux, on every Debian system) gives the run a real pseudo-terminal.

use std::process::{Command, Stdio};

use crate::support::Kiln;

#[test]
fn on_a_terminal_running_jobs_get_a_live_spinner_and_colour() {
    let kiln = Kiln::new().pipeline(
        r#"
jobs:
  slow-job:
    steps:
      - run: |
          echo "working"
          sleep 1
"#,
    );
    let command = format!("{} run", env!("CARGO_BIN_EXE_kiln"));
    let out = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .current_dir(kiln.dir())
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{screen}");
    // The spinner line names the running job and is redrawn in place
    // (cursor movement and line clearing), which plain output never does.
    let spinner_lines = screen
        .split(['\r', '\n'])
        .filter(|l| l.contains("slow-job") && l.contains("\u{1b}[2K"))
        .count();
    assert!(spinner_lines >= 1, "no live progress line:\n{screen:?}");
    assert!(screen.contains("\u{1b}[3"), "no colour:\n{screen:?}");
    assert!(screen.contains("working"), "{screen:?}");
    assert!(screen.contains("run 1 succeeded"), "{screen:?}");
}
