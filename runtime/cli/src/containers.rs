//! Wiring the container executor into the CLI: who owns what (labels),
//! which runs are over (for sweeps), and which images a plan names.

use std::collections::BTreeSet;

use kiln_docker::{Engine, Owner, Swept};
use kiln_pipeline::Plan;
use kiln_store::{RunStatus, Store};

/// The `kiln.state` label value: the state directory's canonical path.
pub(crate) fn state_label(store: &Store) -> String {
    state_dir_label(store.root())
}

/// [`state_label`] of a state directory given by its path.
pub(crate) fn state_dir_label(root: &std::path::Path) -> String {
    std::fs::canonicalize(root)
        .unwrap_or_else(|_| root.to_path_buf())
        .display()
        .to_string()
}

/// The owner of run `run`'s containers.
pub(crate) fn owner(store: &Store, run: i64) -> Owner {
    Owner {
        state: state_label(store),
        run,
    }
}

/// Runs that are over: every run the record knows that is not `running`
/// (opening the store already turned dead `running` runs into
/// `interrupted`), plus numbers the record does not have. Runs started
/// after this snapshot (a higher number) are never leftovers. Two indexed
/// lookups: this runs at the start of container runs.
pub(crate) fn finished_runs(
    store: &Store,
) -> Result<impl Fn(i64) -> bool + use<>, kiln_store::StoreError> {
    let newest = store.last_run()?.unwrap_or(0);
    let live: BTreeSet<i64> = store
        .run_ids_with_status(RunStatus::Running)?
        .into_iter()
        .collect();
    Ok(move |run: i64| run <= newest && !live.contains(&run))
}

/// Whether any run of the record died without finishing it (an indexed
/// lookup, not a read of the history).
pub(crate) fn any_crashed(store: &Store) -> Result<bool, kiln_store::StoreError> {
    Ok(!store
        .run_ids_with_status(RunStatus::Interrupted)?
        .is_empty())
}

/// Whether running `plan` needs Docker at all.
pub(crate) fn uses_containers(plan: &Plan) -> bool {
    plan.jobs.iter().any(|job| {
        job.image.is_some()
            || !job.services.is_empty()
            || job.steps.iter().any(|s| s.image.is_some())
    })
}

/// `(image, where it is used)` pairs.
pub(crate) type ImageUses = Vec<(String, String)>;

/// Every image reference in `plan` with where it is used; references
/// that depend on run-time values (`${{ }}`) are returned apart.
pub(crate) fn images(plan: &Plan) -> (ImageUses, ImageUses) {
    let mut fixed = Vec::new();
    let mut dynamic = Vec::new();
    let mut add =
        |template: &kiln_pipeline::expr::Template, used_by: String| match template.as_literal() {
            Some(image) => {
                if !fixed.iter().any(|(i, _): &(String, String)| i == image) {
                    fixed.push((image.to_owned(), used_by));
                }
            }
            None => dynamic.push((template.text.clone(), used_by)),
        };
    for job in &plan.jobs {
        if let Some(image) = &job.image {
            add(image, format!("job `{}`", job.name));
        }
        for service in &job.services {
            add(
                &service.image,
                format!("service `{}` of job `{}`", service.name, job.name),
            );
        }
        for (i, step) in job.steps.iter().enumerate() {
            if let Some(image) = &step.image {
                add(image, format!("step {} of job `{}`", i + 1, job.name));
            }
        }
    }
    (fixed, dynamic)
}

/// A sweep's result in words.
pub(crate) fn describe(swept: &Swept) -> String {
    let runs: Vec<String> = swept.runs.iter().map(|r| format!("#{r}")).collect();
    format!(
        "removed {} {}, {} {} and {} {} left by {} {}",
        swept.containers,
        plural(swept.containers, "container", "containers"),
        swept.networks,
        plural(swept.networks, "network", "networks"),
        swept.volumes,
        plural(swept.volumes, "volume", "volumes"),
        plural(swept.runs.len(), "run", "runs"),
        runs.join(", ")
    )
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// The engine, from `DOCKER_HOST`.
pub(crate) fn engine() -> std::sync::Arc<Engine> {
    std::sync::Arc::new(Engine::from_env())
}
