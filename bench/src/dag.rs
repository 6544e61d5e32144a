//! The benchmark workload: a random job DAG, rendered as a kiln pipeline or
//! as a Makefile with the same shape.
//!
//! The graph is generated from a fixed seed so every run of a benchmark, on
//! every machine, measures the same pipeline. Job `i` needs up to `needs`
//! distinct jobs chosen uniformly among jobs `0..i`, which keeps the graph
//! acyclic by construction and gives a wide DAG (many jobs ready at once),
//! the shape where scheduler overhead shows.

use std::fmt::Write as _;

/// The seed every benchmark uses unless told otherwise.
pub const DEFAULT_SEED: u64 = 0x6b69_6c6e; // "kiln"

/// A random DAG of `len()` jobs, each needing a few earlier ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dag {
    /// `needs[i]`: the jobs job `i` depends on, ascending, all `< i`.
    needs: Vec<Vec<usize>>,
}

impl Dag {
    /// Generates `jobs` jobs where job `i` needs `min(needs, i)` distinct,
    /// uniformly chosen earlier jobs. Same arguments, same graph.
    pub fn generate(jobs: usize, needs: usize, seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let needs = (0..jobs)
            .map(|i| {
                let k = needs.min(i);
                let mut picked: Vec<usize> = Vec::with_capacity(k);
                // Rejection sampling is fine: k is tiny and, when i is close
                // to k, the loop still ends quickly because k <= i.
                while picked.len() < k {
                    let candidate = rng.usize(0..i);
                    if !picked.contains(&candidate) {
                        picked.push(candidate);
                    }
                }
                picked.sort_unstable();
                picked
            })
            .collect();
        Self { needs }
    }

    /// Number of jobs.
    pub fn len(&self) -> usize {
        self.needs.len()
    }

    /// True if the graph has no job.
    pub fn is_empty(&self) -> bool {
        self.needs.is_empty()
    }

    /// The jobs job `i` needs (ascending). Panics if `i >= len()`.
    pub fn needs_of(&self, i: usize) -> &[usize] {
        &self.needs[i]
    }

    /// Total number of edges.
    pub fn edge_count(&self) -> usize {
        self.needs.iter().map(Vec::len).sum()
    }

    /// The name of job `i`: `j` plus the index zero-padded to the width of
    /// the largest index, so names sort in job order (`j0000` … `j0999`).
    pub fn job_name(&self, i: usize) -> String {
        let width = self.len().saturating_sub(1).to_string().len();
        format!("j{i:0width$}")
    }

    /// Renders the graph as a kiln pipeline whose every job runs one step,
    /// `script` (for example `true`).
    pub fn to_kiln_yaml(&self, pipeline_name: &str, script: &str) -> String {
        // ~60 bytes per job plus ~7 per edge; reserving avoids regrowth in the
        // 10,000-job case.
        let mut out = String::with_capacity(self.len() * 64 + self.edge_count() * 8);
        let _ = writeln!(out, "name: {pipeline_name}");
        out.push_str("jobs:\n");
        for i in 0..self.len() {
            let _ = writeln!(out, "  {}:", self.job_name(i));
            if !self.needs[i].is_empty() {
                let names: Vec<String> = self.needs[i].iter().map(|&n| self.job_name(n)).collect();
                let _ = writeln!(out, "    needs: [{}]", names.join(", "));
            }
            // Quoted so YAML never reads `true` as a boolean.
            let _ = writeln!(out, "    steps:\n      - run: \"{script}\"");
        }
        out
    }

    /// Renders the graph as a Makefile: one phony target per job whose
    /// prerequisites are its needs, with `recipe` as its only command line
    /// (written as given, so pass `@…` to silence echoing), and a phony `all`
    /// that depends on every job.
    ///
    /// Built-in rules and suffixes are disabled and every target is phony,
    /// so make neither searches implicit rules nor stats files: this is make
    /// at its fastest, which is the fair baseline.
    pub fn to_makefile(&self, recipe: &str) -> String {
        let mut out = String::with_capacity(self.len() * 48 + self.edge_count() * 8);
        out.push_str("MAKEFLAGS += --no-builtin-rules\n.SUFFIXES:\n");
        let all: Vec<String> = (0..self.len()).map(|i| self.job_name(i)).collect();
        let _ = writeln!(out, ".PHONY: all {}", all.join(" "));
        let _ = writeln!(out, "all: {}", all.join(" "));
        for (i, name) in all.iter().enumerate() {
            let prereqs: Vec<&str> = self.needs[i].iter().map(|&n| all[n].as_str()).collect();
            if prereqs.is_empty() {
                let _ = writeln!(out, "{name}:");
            } else {
                let _ = writeln!(out, "{name}: {}", prereqs.join(" "));
            }
            let _ = writeln!(out, "\t{recipe}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_graph_other_seed_other_graph() {
        let a = Dag::generate(200, 4, DEFAULT_SEED);
        assert_eq!(a, Dag::generate(200, 4, DEFAULT_SEED));
        assert_ne!(a, Dag::generate(200, 4, DEFAULT_SEED + 1));
    }

    #[test]
    fn every_job_needs_min_of_k_and_i_distinct_earlier_jobs() {
        let dag = Dag::generate(500, 4, 7);
        for i in 0..dag.len() {
            let needs = dag.needs_of(i);
            assert_eq!(needs.len(), 4.min(i), "job {i}");
            assert!(needs.windows(2).all(|w| w[0] < w[1]), "job {i}: {needs:?}");
            assert!(needs.iter().all(|&n| n < i), "job {i}: {needs:?}");
        }
        assert_eq!(dag.edge_count(), (0..500).map(|i| 4.min(i)).sum::<usize>());
    }

    #[test]
    fn job_names_are_padded_to_the_widest_index() {
        assert_eq!(Dag::generate(1000, 4, 1).job_name(7), "j007");
        assert_eq!(Dag::generate(1001, 4, 1).job_name(7), "j0007");
        assert_eq!(Dag::generate(1, 4, 1).job_name(0), "j0");
    }

    #[test]
    fn renders_kiln_yaml() {
        let dag = Dag::generate(3, 4, 1);
        assert_eq!(
            dag.to_kiln_yaml("bench", "true"),
            "name: bench\njobs:\n  j0:\n    steps:\n      - run: \"true\"\n  \
             j1:\n    needs: [j0]\n    steps:\n      - run: \"true\"\n  \
             j2:\n    needs: [j0, j1]\n    steps:\n      - run: \"true\"\n"
        );
    }

    #[test]
    fn renders_makefile() {
        let dag = Dag::generate(3, 4, 1);
        assert_eq!(
            dag.to_makefile("@sh -ec true"),
            "MAKEFLAGS += --no-builtin-rules\n.SUFFIXES:\n.PHONY: all j0 j1 j2\n\
             all: j0 j1 j2\nj0:\n\t@sh -ec true\nj1: j0\n\t@sh -ec true\n\
             j2: j0 j1\n\t@sh -ec true\n"
        );
    }
}
