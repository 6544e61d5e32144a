//! Step log files: `logs/<run>/<job>/<NN>-<step>.log` under the state directory.
//!
//! Job and step names come from the pipeline (matrix names hold spaces,
//! parentheses and `=`), so they are reduced to safe file names; the exact
//! path of every log is also stored in the run record, so readers never have
//! to reconstruct it.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::RunId;
use crate::error::{Result, StoreError};

/// Longest file-name stem produced by [`safe_file_name`].
const MAX_STEM: usize = 60;

/// Reduces `name` to a portable file name: ASCII letters, digits, `.` and
/// `_` stay; every other run of characters (`-` included) becomes one `-`; no leading or
/// trailing `-`/`.` (so never `..` or a hidden file); at most 60 bytes;
/// `fallback` if nothing is left.
///
/// ```
/// assert_eq!(kiln_store::safe_file_name("test (os=linux, node=18)", "job"), "test-os-linux-node-18");
/// assert_eq!(kiln_store::safe_file_name("../..", "job"), "job");
/// ```
pub fn safe_file_name(name: &str, fallback: &str) -> String {
    let mut out = String::with_capacity(name.len().min(MAX_STEM));
    for c in name.chars() {
        if out.len() >= MAX_STEM {
            break;
        }
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches(['-', '.']);
    if trimmed.is_empty() {
        fallback.to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Writes one run's step output to log files, one buffered writer per
/// running step.
#[derive(Debug)]
pub struct LogWriter {
    root: PathBuf,
    run_dir: PathBuf,
    job_dirs: HashMap<usize, String>,
    open: HashMap<(usize, usize), Slot>,
}

/// A step's log: created on its first line, so a silent step costs no
/// file (thousands of no-op jobs would otherwise spend most of the
/// recorder's time creating empty files).
#[derive(Debug)]
enum Slot {
    Pending { path: PathBuf, attempt: u32 },
    Open(BufWriter<File>),
}

impl LogWriter {
    /// Prepares logs for `run` under the state directory `root`, given the
    /// run's jobs (plan index, unique name). Names that reduce to the same
    /// file name get their plan index appended, so no two jobs share a
    /// directory.
    pub fn new<'a>(
        root: &Path,
        run: RunId,
        jobs: impl IntoIterator<Item = (usize, &'a str)>,
    ) -> Self {
        let mut taken = HashSet::new();
        let mut job_dirs = HashMap::new();
        for (index, name) in jobs {
            let mut dir = safe_file_name(name, "job");
            if !taken.insert(dir.clone()) {
                dir = format!("{dir}-{index}");
                taken.insert(dir.clone());
            }
            job_dirs.insert(index, dir);
        }
        Self {
            root: root.to_owned(),
            run_dir: Path::new("logs").join(run.to_string()),
            job_dirs,
            open: HashMap::new(),
        }
    }

    /// The log file of a step, relative to the state directory.
    pub fn step_path(&self, job: usize, step: usize, name: &str) -> PathBuf {
        let dir = self
            .job_dirs
            .get(&job)
            .cloned()
            .unwrap_or_else(|| format!("job-{job}"));
        let file = format!("{:02}-{}.log", step + 1, safe_file_name(name, "step"));
        self.run_dir.join(dir).join(file)
    }

    /// Opens (appending) the log of a step attempt and returns its path
    /// relative to the state directory. Later attempts of a retried job
    /// append to the same file after a marker line.
    pub fn open_step(
        &mut self,
        job: usize,
        step: usize,
        name: &str,
        attempt: u32,
    ) -> Result<PathBuf> {
        let relative = self.step_path(job, step, name);
        let path = self.root.join(&relative);
        let pending = Slot::Pending { path, attempt };
        if let Some(Slot::Open(mut previous)) = self.open.insert((job, step), pending) {
            previous.flush().map_err(|source| self.io_error(source))?;
        }
        Ok(relative)
    }

    /// Appends one output line (a newline is added). Lines for a step that
    /// was never opened are dropped: the engine always starts a step first.
    pub fn write_line(&mut self, job: usize, step: usize, line: &str) -> Result<()> {
        let Some(slot) = self.open.get_mut(&(job, step)) else {
            return Ok(());
        };
        if let Slot::Pending { path, attempt } = slot {
            let writer = create(path, *attempt).map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
            *slot = Slot::Open(writer);
        }
        let Slot::Open(writer) = slot else {
            return Ok(());
        };
        writer
            .write_all(line.as_bytes())
            .and_then(|()| writer.write_all(b"\n"))
            .map_err(|source| StoreError::Io {
                path: self.root.join(&self.run_dir),
                source,
            })
    }

    fn io_error(&self, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: self.root.join(&self.run_dir),
            source,
        }
    }

    /// Flushes and closes a step's log.
    pub fn close_step(&mut self, job: usize, step: usize) -> Result<()> {
        match self.open.remove(&(job, step)) {
            Some(Slot::Open(mut writer)) => writer.flush().map_err(|source| self.io_error(source)),
            Some(Slot::Pending { .. }) | None => Ok(()),
        }
    }

    /// Flushes and closes every open log (end of run, or cancellation).
    pub fn close_all(&mut self) -> Result<()> {
        let open: Vec<(usize, usize)> = self.open.keys().copied().collect();
        for (job, step) in open {
            self.close_step(job, step)?;
        }
        Ok(())
    }
}

/// Opens a step's log for appending, with a marker line before a retry's
/// output.
fn create(path: &Path, attempt: u32) -> std::io::Result<BufWriter<File>> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let mut writer = BufWriter::new(file);
    if attempt > 1 {
        writeln!(writer, "--- attempt {attempt} ---")?;
    }
    Ok(writer)
}
