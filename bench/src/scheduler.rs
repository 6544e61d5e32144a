//! `kiln-bench scheduler`: kiln against `make -j` on the same random DAG of
//! no-op jobs, so what differs is scheduling and process-management overhead.
//!
//! Fairness: kiln runs each step here as `sh -e -c true` (a script without
//! `${{ }}` needs no script file), one `sh` process per job. A bare `@true`
//! recipe would let make exec `/bin/true` directly — also one process, but a
//! smaller binary than `sh`. The recipe `@sh -ec true` makes make start
//! exactly one `sh` per job too (make execs a command line without shell
//! metacharacters directly, so there is no extra shell in between), so both
//! sides do the same child work and the difference is the runner. kiln
//! additionally keeps the run record and log files; that is kiln's cost and
//! is counted.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cpu::{Measured, run_measured};
use crate::dag::Dag;
use crate::error::Error;
use crate::stats::{Summary, middle, us};

/// The Makefile recipe; see the module docs for why it is `sh -ec true`.
pub const MAKE_RECIPE: &str = "@sh -ec true";

/// Parameters of one `scheduler` benchmark.
#[derive(Debug, Clone)]
pub struct SchedulerBench {
    /// Jobs in the DAG.
    pub jobs: usize,
    /// Needs per job.
    pub needs: usize,
    /// `make -jN` and `kiln run --jobs N`.
    pub parallel: usize,
    /// Measured rounds per runner (after one unmeasured warm-up each).
    pub rounds: usize,
    /// Generator seed.
    pub seed: u64,
    /// The `kiln` binary.
    pub kiln: PathBuf,
    /// Directory for kiln.yml, the Makefile and kiln's `.kiln/`; removed
    /// afterwards unless `keep`.
    pub dir: PathBuf,
    /// Keep `dir` for inspection.
    pub keep: bool,
}

/// Which runner a measurement belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runner {
    Make,
    Kiln,
}

/// Medians over the measured rounds for one runner.
#[derive(Debug, Clone, Copy)]
pub struct RunnerFigures {
    /// Median wall time.
    pub wall: Duration,
    /// Median CPU of the runner process itself, per job.
    pub own_cpu_per_job: Duration,
    /// Median CPU of the runner plus every `sh` it started, per job.
    pub total_cpu_per_job: Duration,
}

/// The outcome of a scheduler benchmark.
#[derive(Debug, Clone)]
pub struct SchedulerReport {
    /// make's figures.
    pub make: RunnerFigures,
    /// kiln's figures.
    pub kiln: RunnerFigures,
    /// kiln's wall time over make's, per round: the two ran back to back,
    /// so a machine that is slower for a while (a VM's neighbours) slows
    /// both sides of a pair, where medians taken apart mix slow and fast
    /// minutes.
    pub paired: Vec<f64>,
}

impl SchedulerReport {
    /// kiln's median wall time divided by make's.
    pub fn ratio(&self) -> f64 {
        self.kiln.wall.as_secs_f64() / self.make.wall.as_secs_f64()
    }

    /// The median of the per-round ratios, and their range; `None`
    /// without rounds.
    pub fn paired_ratio(&self) -> Option<(f64, f64, f64)> {
        let mut sorted = self.paired.clone();
        sorted.sort_by(f64::total_cmp);
        let median = middle(&sorted, |a, b| (a + b) / 2.0)?;
        Some((median, sorted[0], sorted[sorted.len() - 1]))
    }
}

impl SchedulerBench {
    /// Writes the workload, runs both runners alternately and prints the
    /// comparison.
    pub fn run(&self) -> Result<SchedulerReport, Error> {
        let result = self.run_in_dir();
        if !self.keep {
            let _ = fs::remove_dir_all(&self.dir);
        }
        result
    }

    fn run_in_dir(&self) -> Result<SchedulerReport, Error> {
        self.write_workload()?;
        println!(
            "scheduler: {} no-op jobs, random DAG (≤{} needs each, seed {:#x}), {} slots, \
             {} rounds alternating after a warm-up",
            self.jobs, self.needs, self.seed, self.parallel, self.rounds
        );
        println!(
            "  make: make -j{} -f Makefile all   (recipe `{MAKE_RECIPE}`)",
            self.parallel
        );
        println!(
            "  kiln: {} run --jobs {} kiln.yml",
            self.kiln.display(),
            self.parallel
        );
        println!("  both start exactly one `sh` per job (see docs/decisions.md)");

        self.measure(Runner::Make)?;
        self.measure(Runner::Kiln)?;
        let (mut make, mut kiln) = (Vec::new(), Vec::new());
        for round in 0..self.rounds.max(1) {
            // Alternate who goes first so neither always runs on a cooler
            // (or hotter) machine.
            let order = if round % 2 == 0 {
                [Runner::Make, Runner::Kiln]
            } else {
                [Runner::Kiln, Runner::Make]
            };
            for runner in order {
                let m = self.measure(runner)?;
                println!(
                    "  round {}: {:<4} {:>8.3} s wall   cpu own {:>7.3} s   + children {:>7.3} s",
                    round + 1,
                    if runner == Runner::Make {
                        "make"
                    } else {
                        "kiln"
                    },
                    m.wall.as_secs_f64(),
                    m.own_cpu.as_secs_f64(),
                    m.children_cpu.as_secs_f64(),
                );
                match runner {
                    Runner::Make => make.push(m),
                    Runner::Kiln => kiln.push(m),
                }
            }
        }
        let paired = make
            .iter()
            .zip(&kiln)
            .map(|(make, kiln)| kiln.wall.as_secs_f64() / make.wall.as_secs_f64())
            .collect();
        let report = SchedulerReport {
            make: self.figures(&make),
            kiln: self.figures(&kiln),
            paired,
        };
        self.print(&report);
        Ok(report)
    }

    fn write_workload(&self) -> Result<(), Error> {
        let dag = Dag::generate(self.jobs, self.needs, self.seed);
        fs::create_dir_all(&self.dir)
            .map_err(Error::io(format!("creating `{}`", self.dir.display())))?;
        let files = [
            (
                "kiln.yml",
                dag.to_kiln_yaml(&format!("scheduler-{}", self.jobs), "true"),
            ),
            ("Makefile", dag.to_makefile(MAKE_RECIPE)),
        ];
        for (name, text) in files {
            let path = self.dir.join(name);
            fs::write(&path, text).map_err(Error::io(format!("writing `{}`", path.display())))?;
        }
        Ok(())
    }

    fn measure(&self, runner: Runner) -> Result<Measured, Error> {
        // Each kiln round starts from an empty `.kiln/`, like make starts
        // from no state, so rounds are comparable.
        let _ = fs::remove_dir_all(self.dir.join(".kiln"));
        let jobs = self.parallel.to_string();
        let mut cmd = match runner {
            Runner::Make => {
                let mut c = Command::new("make");
                c.args([&format!("-j{jobs}"), "-f", "Makefile", "all"]);
                c
            }
            Runner::Kiln => {
                let mut c = Command::new(&self.kiln);
                c.args(["run", "--jobs", &jobs, "kiln.yml"]);
                c
            }
        };
        let stderr_path = self.dir.join(match runner {
            Runner::Make => "make.stderr",
            Runner::Kiln => "kiln.stderr",
        });
        let stderr = File::create(&stderr_path)
            .map_err(Error::io(format!("creating `{}`", stderr_path.display())))?;
        cmd.current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let described = format!("{cmd:?}");
        let m = run_measured(&mut cmd).map_err(Error::io(format!("running {described}")))?;
        if !m.status.success() {
            return Err(Error::CommandFailed {
                command: described,
                status: m.status,
                stderr_tail: tail(&stderr_path, 20),
            });
        }
        Ok(m)
    }

    fn figures(&self, runs: &[Measured]) -> RunnerFigures {
        let median = |f: &dyn Fn(&Measured) -> Duration| {
            let v: Vec<Duration> = runs.iter().map(f).collect();
            Summary::of(&v).map(|s| s.median).unwrap_or_default()
        };
        let per_job = |d: Duration| d / self.jobs.max(1) as u32;
        RunnerFigures {
            wall: median(&|m| m.wall),
            own_cpu_per_job: per_job(median(&|m| m.own_cpu)),
            total_cpu_per_job: per_job(median(&|m| m.own_cpu + m.children_cpu)),
        }
    }

    fn print(&self, r: &SchedulerReport) {
        println!();
        println!(
            "  {:<6} {:>12} {:>18} {:>22}",
            "", "median wall", "own CPU per job", "CPU per job incl. sh"
        );
        for (name, f) in [("make", r.make), ("kiln", r.kiln)] {
            println!(
                "  {:<6} {:>10.3} s {:>18} {:>22}",
                name,
                f.wall.as_secs_f64(),
                us(f.own_cpu_per_job),
                us(f.total_cpu_per_job)
            );
        }
        let ratio = r.ratio();
        let verdict = |ratio: f64| if ratio <= 1.1 { "ok" } else { "OVER" };
        println!(
            "  ratio kiln/make: {ratio:.2}×   (goal ≤ 1.10×: {})",
            verdict(ratio)
        );
        if let Some((median, min, max)) = r.paired_ratio() {
            println!(
                "  per round (back to back): median {median:.2}×, {min:.2}×–{max:.2}×   \
                 (goal ≤ 1.10×: {})",
                verdict(median)
            );
        }
        println!(
            "  own CPU is the runner process alone (10 ms clock-tick resolution); \
             'incl. sh' adds the shells it started"
        );
    }
}

/// The last `lines` lines of the file at `path` (empty if unreadable).
fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The `kiln` binary next to the running executable (`target/release/kiln`
/// when run as `cargo run --release -p kiln-bench`), built with cargo if it
/// is not there yet.
pub fn locate_kiln() -> Result<PathBuf, Error> {
    let exe = std::env::current_exe().map_err(Error::io("finding the bench executable"))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let kiln = dir.join("kiln");
    if kiln.is_file() {
        return Ok(kiln);
    }
    // Only build when we are clearly inside this workspace's target dir.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let profile_is_release = dir.file_name().is_some_and(|n| n == "release");
    if profile_is_release {
        eprintln!(
            "no kiln binary at {}; running `cargo build --release -p kiln`",
            kiln.display()
        );
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--release", "-p", "kiln"])
            .current_dir(&workspace)
            .status()
            .map_err(Error::io("running cargo build"))?;
        if status.success() && kiln.is_file() {
            return Ok(kiln);
        }
    }
    Err(Error::KilnMissing { path: kiln })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines_and_tolerates_a_missing_file() {
        let path = std::env::temp_dir().join(format!("kiln-bench-tail-{}", std::process::id()));
        fs::write(&path, "one\ntwo\nthree\n").unwrap();
        assert_eq!(tail(&path, 2), "two\nthree");
        assert_eq!(tail(&path, 10), "one\ntwo\nthree");
        fs::remove_file(&path).unwrap();
        assert_eq!(tail(&path, 2), "");
    }

    #[test]
    fn paired_ratios_are_summarised_by_median_and_range() {
        let figures = RunnerFigures {
            wall: Duration::from_secs(1),
            own_cpu_per_job: Duration::ZERO,
            total_cpu_per_job: Duration::ZERO,
        };
        let report = |paired: Vec<f64>| SchedulerReport {
            make: figures,
            kiln: figures,
            paired,
        };
        assert_eq!(
            report(vec![1.3, 1.1, 1.2]).paired_ratio(),
            Some((1.2, 1.1, 1.3))
        );
        let (median, min, max) = report(vec![1.4, 1.0, 1.2, 1.1]).paired_ratio().unwrap();
        assert!((median - 1.15).abs() < 1e-9, "{median}");
        assert_eq!((min, max), (1.0, 1.4));
        assert_eq!(report(Vec::new()).paired_ratio(), None);
    }

    #[test]
    fn make_gets_the_same_child_work_as_kiln() {
        // One `sh` per job, exec'd directly by make: see the module docs.
        assert_eq!(MAKE_RECIPE, "@sh -ec true");
        let makefile = Dag::generate(2, 4, 1).to_makefile(MAKE_RECIPE);
        assert!(makefile.contains("j1: j0\n\t@sh -ec true\n"), "{makefile}");
    }
}
