//! `kiln-bench plan`: how long `kiln_pipeline::load` (parse + validate +
//! interpolate + expand + plan) takes on a generated random-DAG pipeline.

use std::hint::black_box;
use std::time::{Duration, Instant};

use kiln_pipeline::{LoadOptions, SourceFile};

use crate::dag::Dag;
use crate::error::Error;
use crate::stats::{Summary, ms};

/// DESIGN.md's budget for validate + plan of 1,000 jobs on a 2-core machine.
pub const BUDGET_1000_JOBS: Duration = Duration::from_millis(15);

/// Parameters of one `plan` benchmark.
#[derive(Debug, Clone)]
pub struct PlanBench {
    /// Pipeline sizes to measure, in jobs.
    pub sizes: Vec<usize>,
    /// Needs per job.
    pub needs: usize,
    /// Timed loads per size (after two untimed warm-up loads).
    pub iterations: usize,
    /// Generator seed.
    pub seed: u64,
}

/// Figures for one pipeline size.
#[derive(Debug, Clone)]
pub struct PlanReport {
    /// Jobs in the pipeline.
    pub jobs: usize,
    /// `needs` edges.
    pub edges: usize,
    /// YAML size in bytes.
    pub bytes: usize,
    /// Load timings.
    pub summary: Summary,
}

impl PlanReport {
    /// Throughput at the median, in MiB of YAML per second.
    pub fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / (1024.0 * 1024.0) / self.summary.median.as_secs_f64()
    }

    /// One line for the terminal.
    pub fn line(&self) -> String {
        let mut line = format!(
            "plan {:>6} jobs {:>6} needs {:>8.1} KiB   median {:>11}   p99 {:>11}   {:>6.1} MiB/s",
            self.jobs,
            self.edges,
            self.bytes as f64 / 1024.0,
            ms(self.summary.median),
            ms(self.summary.p99),
            self.mib_per_s(),
        );
        if self.jobs == 1000 {
            let verdict = if self.summary.median <= BUDGET_1000_JOBS {
                "ok"
            } else {
                "OVER"
            };
            line.push_str(&format!("   budget ≤ 15 ms: {verdict}"));
        }
        line
    }
}

impl PlanBench {
    /// Runs the benchmark for every size, printing each line as it is ready.
    pub fn run(&self) -> Result<Vec<PlanReport>, Error> {
        let mut reports = Vec::new();
        for &jobs in &self.sizes {
            let report = self.measure(jobs)?;
            println!("{}", report.line());
            reports.push(report);
        }
        Ok(reports)
    }

    fn measure(&self, jobs: usize) -> Result<PlanReport, Error> {
        let dag = Dag::generate(jobs, self.needs, self.seed);
        let yaml = dag.to_kiln_yaml(&format!("bench-{jobs}"), "true");
        let bytes = yaml.len();
        let source = SourceFile::new("bench.yml", yaml);
        let options = LoadOptions::default();

        // Warm-up, and proof that we time a successful load, not an early
        // rejection.
        for _ in 0..2 {
            let loaded = kiln_pipeline::load(&source, &options).map_err(|e| {
                let first = e
                    .diagnostics
                    .first()
                    .map(|d| d.message.clone())
                    .unwrap_or_default();
                Error::Load(format!("{e}; first: {first}"))
            })?;
            if loaded.plan.jobs.len() != jobs {
                return Err(Error::Load(format!(
                    "expected {jobs} jobs in the plan, got {}",
                    loaded.plan.jobs.len()
                )));
            }
        }

        let samples: Vec<Duration> = (0..self.iterations.max(1))
            .map(|_| {
                let start = Instant::now();
                let loaded = kiln_pipeline::load(black_box(&source), &options);
                let elapsed = start.elapsed();
                // Dropping the plan is part of what a user pays, but keep it
                // outside the timed region so the figure is load() alone.
                drop(black_box(loaded));
                elapsed
            })
            .collect();
        let summary = Summary::of(&samples).ok_or_else(|| Error::Load("no samples".into()))?;
        Ok(PlanReport {
            jobs,
            edges: dag.edge_count(),
            bytes,
            summary,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_pipeline::JobId;

    #[test]
    fn the_generated_pipeline_loads_with_the_same_graph() {
        let dag = Dag::generate(60, 4, 3);
        let source = SourceFile::new("bench.yml", dag.to_kiln_yaml("bench-60", "true"));
        let loaded = kiln_pipeline::load(&source, &LoadOptions::default()).unwrap();
        assert_eq!(loaded.plan.name, "bench-60");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(loaded.plan.jobs.len(), 60);
        for (i, job) in loaded.plan.jobs.iter().enumerate() {
            assert_eq!(job.name, dag.job_name(i));
            let mut needs = job.needs.clone();
            needs.sort();
            let expected: Vec<JobId> = dag.needs_of(i).iter().map(|&n| JobId(n)).collect();
            assert_eq!(needs, expected, "job {i}");
        }
    }

    #[test]
    fn the_budget_verdict_appears_only_for_1000_jobs() {
        let summary = Summary::of(&[Duration::from_millis(4)]).unwrap();
        let report = |jobs| PlanReport {
            jobs,
            edges: 0,
            bytes: 1024 * 1024,
            summary,
        };
        assert!(report(1000).line().ends_with("budget ≤ 15 ms: ok"));
        assert!(!report(10_000).line().contains("budget"));
        assert_eq!(report(1000).mib_per_s().round(), 250.0);
    }
}
