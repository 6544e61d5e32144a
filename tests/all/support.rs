//! A tiny builder for end-to-end cases, in the style of `just`'s tests:
//!
//! ```ignore
//! Kiln::new().pipeline("jobs: …").args(["run"]).run().code(0).stdout_has("…");
//! ```
//!
//! Each case gets a fresh temp directory holding `kiln.yml`; the binary runs
//! with that directory as its cwd and a scrubbed `KILN_*` environment.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// One end-to-end case.
pub struct Kiln {
    dir: tempfile::TempDir,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
}

/// What the binary did.
#[derive(Debug)]
pub struct Output {
    /// Exit code (`None` if killed by a signal).
    pub status: Option<i32>,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
}

impl Kiln {
    /// A fresh, empty working directory.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Writes `kiln.yml`.
    pub fn pipeline(self, yaml: &str) -> Self {
        self.file("kiln.yml", yaml)
    }

    /// Writes `contents` (any bytes) to `path` in the case's directory.
    pub fn bytes(self, path: &str, contents: &[u8]) -> Self {
        std::fs::write(self.dir.path().join(path), contents).expect("write file");
        self
    }

    /// Writes a file relative to the working directory.
    pub fn file(self, path: &str, contents: &str) -> Self {
        let path = self.dir.path().join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent dir");
        }
        std::fs::write(path, contents).expect("write file");
        self
    }

    /// Sets the arguments of [`Kiln::run`].
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the working directory.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Reads a file inside the working directory.
    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative))
            .unwrap_or_else(|e| panic!("reading {relative}: {e}"))
    }

    /// The command, configured but not started.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.current_dir(self.dir.path())
            .args(args.into_iter().map(Into::into))
            .stdin(Stdio::null());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KILN_") {
                cmd.env_remove(key);
            }
        }
        cmd.env_remove("NO_COLOR");
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd
    }

    /// Runs with the arguments given to [`Kiln::args`].
    pub fn run(&self) -> Output {
        self.run_with(self.args.clone())
    }

    /// Runs other arguments in the same directory (`runs list` after `run`).
    pub fn run_with<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let out = self.command(args).output().expect("kiln starts");
        Output {
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Starts `args`, stdout and stderr piped, without waiting.
    pub fn spawn_with<I, S>(&self, args: I) -> Child
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kiln starts")
    }

    /// Starts with [`Kiln::args`], stdout and stderr piped, without waiting.
    pub fn spawn(&self) -> Child {
        self.command(self.args.clone())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kiln starts")
    }
}

impl Output {
    /// Asserts the exit code.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(self.status, Some(expected), "unexpected exit code\n{self}");
        self
    }

    /// Asserts stdout contains `needle`.
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{self}"
        );
        self
    }

    /// Asserts stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{self}"
        );
        self
    }

    /// Asserts stdout is exactly `expected`.
    #[track_caller]
    pub fn stdout_is(&self, expected: &str) -> &Self {
        assert_eq!(self.stdout, expected, "\n{self}");
        self
    }

    /// Asserts stderr is exactly `expected`.
    #[track_caller]
    pub fn stderr_is(&self, expected: &str) -> &Self {
        assert_eq!(self.stderr, expected, "\n{self}");
        self
    }

    /// Asserts neither stream contains `needle` (secrets).
    #[track_caller]
    pub fn never_shows(&self, needle: &str) -> &Self {
        assert!(
            !self.stdout.contains(needle),
            "stdout leaks {needle:?}\n{self}"
        );
        assert!(
            !self.stderr.contains(needle),
            "stderr leaks {needle:?}\n{self}"
        );
        self
    }

    /// stdout parsed as JSON lines.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{self}"))
            })
            .collect()
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit: {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}
