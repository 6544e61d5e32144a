//! The job graph: `needs` resolution, cycle detection, levels and the
//! critical path. Everything here is iterative and linear in jobs + edges,
//! so a 10,000-job chain or cycle costs microseconds, not a stack overflow.

use std::collections::HashMap;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::ast;
use crate::diagnostic::Diagnostic;
use crate::plan::JobId;
use crate::source::Span;
use crate::suggest;

/// A resolved `needs` entry: the index of the needed job in declaration
/// order, and where the entry was written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Need {
    pub job: usize,
    pub span: Span,
}

/// Resolves every job's `needs` to job indices, reporting unknown jobs,
/// self-dependencies, repeated entries and cycles.
pub(crate) fn resolve(jobs: &[ast::Job], diagnostics: &mut Vec<Diagnostic>) -> Vec<Vec<Need>> {
    let index: HashMap<&str, usize> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.key.as_str(), i))
        .collect();
    let mut resolved = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        let mut needs: Vec<Need> = Vec::with_capacity(job.needs.len());
        for need in &job.needs {
            let Some(&target) = index.get(need.value.as_str()) else {
                diagnostics.push(unknown_job(&job.key, need, jobs));
                continue;
            };
            if target == i {
                diagnostics.push(
                    Diagnostic::error(
                        "self-dependency",
                        need.span,
                        format!("job `{}` needs itself", job.key),
                    )
                    .with_help("remove it from its own `needs`"),
                );
            } else if needs.iter().any(|n| n.job == target) {
                diagnostics.push(
                    Diagnostic::warning(
                        "duplicate-need",
                        need.span,
                        format!(
                            "job `{}` lists `{}` in `needs` more than once",
                            job.key, need.value
                        ),
                    )
                    .with_help("remove the repeated entry"),
                );
            } else {
                needs.push(Need {
                    job: target,
                    span: need.span,
                });
            }
        }
        resolved.push(needs);
    }
    report_cycles(jobs, &resolved, diagnostics);
    resolved
}

fn unknown_job(job: &str, need: &ast::Text, jobs: &[ast::Job]) -> Diagnostic {
    let mut d = Diagnostic::error(
        "unknown-job",
        need.span,
        format!("job `{job}` needs `{}`, which does not exist", need.value),
    )
    .with_label("no job with this name");
    d.help = suggest::help(&need.value, jobs.iter().map(|j| j.key.as_str()), || {
        Some(format!(
            "`needs` names jobs of this pipeline: {}",
            suggest::listing(jobs.iter().map(|j| j.key.as_str()))
        ))
    });
    d
}

/// Depth-first search with an explicit stack and three colours. Each back
/// edge closes one cycle, reported once at the `needs` entry that closes it.
fn report_cycles(jobs: &[ast::Job], needs: &[Vec<Need>], diagnostics: &mut Vec<Diagnostic>) {
    const WHITE: u8 = 0;
    const GREY: u8 = 1;
    const BLACK: u8 = 2;
    let mut colour = vec![WHITE; jobs.len()];
    // Path of (job, next need to visit); `position[j]` is j's index in it.
    let mut path: Vec<(usize, usize)> = Vec::new();
    let mut position = vec![usize::MAX; jobs.len()];
    for root in 0..jobs.len() {
        if colour[root] != WHITE {
            continue;
        }
        colour[root] = GREY;
        position[root] = 0;
        path.push((root, 0));
        while let Some(top) = path.last_mut() {
            let job = top.0;
            let Some(need) = needs[job].get(top.1).copied() else {
                colour[job] = BLACK;
                path.pop();
                continue;
            };
            top.1 += 1;
            match colour[need.job] {
                WHITE => {
                    colour[need.job] = GREY;
                    position[need.job] = path.len();
                    path.push((need.job, 0));
                }
                GREY => {
                    let cycle: Vec<&str> = path[position[need.job]..]
                        .iter()
                        .map(|&(j, _)| jobs[j].key.as_str())
                        .chain([jobs[need.job].key.as_str()])
                        .collect();
                    diagnostics.push(
                        Diagnostic::error(
                            "dependency-cycle",
                            need.span,
                            format!("dependency cycle: {}", cycle_text(&cycle)),
                        )
                        .with_label(format!(
                            "`{}` needs `{}`, which closes the cycle",
                            jobs[job].key, jobs[need.job].key
                        ))
                        .with_help("remove one of the `needs` entries on the cycle"),
                    );
                }
                _ => {}
            }
        }
    }
}

/// `a → b → c → a`; very long cycles keep their ends and say how many
/// jobs were left out.
fn cycle_text(cycle: &[&str]) -> String {
    const KEEP: usize = 5;
    if cycle.len() <= 2 * KEEP + 2 {
        return cycle.join(" → ");
    }
    let hidden = cycle.len() - 2 * KEEP;
    format!(
        "{} → … ({hidden} more) → {}",
        cycle[..KEEP].join(" → "),
        cycle[cycle.len() - KEEP..].join(" → ")
    )
}

/// The graph, levels and critical path of an acyclic job list where
/// `needs[i]` are the jobs job `i` needs.
pub(crate) struct Layout {
    pub graph: DiGraph<JobId, ()>,
    pub levels: Vec<Vec<JobId>>,
    pub critical_path: Vec<JobId>,
}

/// Lays out an acyclic graph (Kahn's algorithm; linear).
pub(crate) fn layout(needs: &[&[JobId]]) -> Layout {
    let n = needs.len();
    let edges: usize = needs.iter().map(|n| n.len()).sum();
    let mut graph = DiGraph::with_capacity(n, edges);
    for i in 0..n {
        graph.add_node(JobId(i));
    }
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (job, job_needs) in needs.iter().enumerate() {
        for need in *job_needs {
            graph.add_edge(NodeIndex::new(need.0), NodeIndex::new(job), ());
            dependents[need.0].push(job);
        }
    }
    let mut remaining: Vec<usize> = needs.iter().map(|n| n.len()).collect();
    let mut level = vec![0usize; n];
    // Longest chain ending at each job, and the job before it on that chain.
    let mut chain = vec![1usize; n];
    let mut previous = vec![usize::MAX; n];
    let mut queue: Vec<usize> = (0..n).filter(|&j| remaining[j] == 0).collect();
    let mut head = 0;
    while let Some(&job) = queue.get(head) {
        head += 1;
        for &d in &dependents[job] {
            level[d] = level[d].max(level[job] + 1);
            if chain[job] + 1 > chain[d] {
                chain[d] = chain[job] + 1;
                previous[d] = job;
            }
            remaining[d] -= 1;
            if remaining[d] == 0 {
                queue.push(d);
            }
        }
    }
    let depth = level.iter().max().map_or(0, |m| m + 1);
    let mut levels = vec![Vec::new(); depth];
    for (job, &l) in level.iter().enumerate() {
        levels[l].push(JobId(job));
    }
    let mut critical_path = Vec::new();
    // First job (in declaration order) that ends a longest chain.
    let mut at = (0..n).fold(None, |best: Option<usize>, j| match best {
        Some(b) if chain[b] >= chain[j] => Some(b),
        _ => Some(j),
    });
    while let Some(job) = at {
        critical_path.push(JobId(job));
        at = (previous[job] != usize::MAX).then_some(previous[job]);
    }
    critical_path.reverse();
    Layout {
        graph,
        levels,
        critical_path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_cycles_are_abbreviated() {
        let names: Vec<String> = (0..20).map(|i| format!("j{i}")).collect();
        let mut cycle: Vec<&str> = names.iter().map(String::as_str).collect();
        cycle.push("j0");
        assert_eq!(
            cycle_text(&cycle),
            "j0 → j1 → j2 → j3 → j4 → … (11 more) → j16 → j17 → j18 → j19 → j0"
        );
        assert_eq!(cycle_text(&["a", "b", "a"]), "a → b → a");
    }

    #[test]
    fn levels_and_critical_path() {
        // 0 ← 1 ← 3, 0 ← 2, 4 alone.
        let needs: Vec<Vec<JobId>> = vec![
            vec![],
            vec![JobId(0)],
            vec![JobId(0)],
            vec![JobId(1)],
            vec![],
        ];
        let refs: Vec<&[JobId]> = needs.iter().map(Vec::as_slice).collect();
        let l = layout(&refs);
        assert_eq!(
            l.levels,
            vec![
                vec![JobId(0), JobId(4)],
                vec![JobId(1), JobId(2)],
                vec![JobId(3)]
            ]
        );
        assert_eq!(l.critical_path, vec![JobId(0), JobId(1), JobId(3)]);
        assert_eq!(l.graph.edge_count(), 3);
    }
}
