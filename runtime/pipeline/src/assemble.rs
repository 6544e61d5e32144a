//! The last step of loading: matrix instances become jobs with ids, `needs`
//! become job ids, and the graph is laid out.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use crate::expr::Template;
use crate::graph::{self, Need};
use crate::lower::Lowered;
use crate::matrix;
use crate::plan::{Job, JobId, Plan};

/// Builds the plan from lowered jobs (one per declared job, in order) and
/// their resolved needs. The caller guarantees there were no errors, so the
/// graph is acyclic.
pub(crate) fn plan(
    name: String,
    env: Vec<(String, Template)>,
    timeout: Option<Duration>,
    lowered: Vec<Lowered>,
    needs: &[Vec<Need>],
) -> Plan {
    let mut ranges: Vec<Range<usize>> = Vec::with_capacity(lowered.len());
    let mut jobs: Vec<Job> = Vec::with_capacity(lowered.len());
    for l in lowered {
        let start = jobs.len();
        let Some((last, others)) = l.combinations.split_last() else {
            ranges.push(start..start);
            continue;
        };
        for combo in others {
            jobs.push(instance(l.job.clone(), combo, jobs.len()));
        }
        // The last instance takes the template itself: no clone for the
        // common single-instance job.
        jobs.push(instance(l.job, last, jobs.len()));
        ranges.push(start..jobs.len());
    }
    for (declared, range) in ranges.iter().enumerate() {
        let ids: Vec<JobId> = needs[declared]
            .iter()
            .flat_map(|n| ranges[n.job].clone().map(JobId))
            .collect();
        for job in &mut jobs[range.clone()] {
            job.needs.clone_from(&ids);
        }
    }
    from_jobs(name, env, timeout, jobs)
}

fn instance(mut job: Job, combo: &matrix::Combination, id: usize) -> Job {
    job.id = JobId(id);
    if !combo.is_empty() {
        job.name = matrix::instance_name(&job.key, combo);
        if job.title == job.key {
            job.title = job.name.clone();
        }
        job.matrix = combo.iter().cloned().collect();
    }
    job
}

/// A plan over `jobs` whose ids are their indices and whose needs are
/// acyclic: computes the graph, levels and critical path.
pub(crate) fn from_jobs(
    name: String,
    env: Vec<(String, Template)>,
    timeout: Option<Duration>,
    jobs: Vec<Job>,
) -> Plan {
    let needs: Vec<&[JobId]> = jobs.iter().map(|j| j.needs.as_slice()).collect();
    let layout = graph::layout(&needs);
    Plan {
        name,
        env,
        timeout,
        jobs,
        graph: layout.graph,
        levels: layout.levels,
        critical_path: layout.critical_path,
    }
}

/// `name:` of the pipeline, else the file stem (`ci/build.yml` → `build`).
pub(crate) fn plan_name(declared: Option<&str>, file: &str) -> String {
    declared.map_or_else(
        || {
            Path::new(file)
                .file_stem()
                .map_or_else(|| file.to_owned(), |s| s.to_string_lossy().into_owned())
        },
        str::to_owned,
    )
}
