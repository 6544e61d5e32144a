//! Building what `${{ }}` expressions see at run time.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use kiln_pipeline::expr::{Context, Status, Template};
use kiln_pipeline::{Job, JobId};
use serde_json::{Map, Value, json};

use crate::event::JobResult;

/// What a finished job offers its dependents.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    /// Final result.
    pub result: JobResult,
    /// Masked outputs.
    pub outputs: Vec<(String, String)>,
}

/// The GitHub spelling of a result, which `needs.<job>.result` compares to.
pub(crate) fn result_name(result: JobResult) -> &'static str {
    match result {
        JobResult::Success => "success",
        JobResult::Failed | JobResult::TimedOut => "failure",
        JobResult::Skipped => "skipped",
        JobResult::Cancelled => "cancelled",
    }
}

/// The `needs` context of `job`: one entry per needed job key. Matrix
/// siblings share a key: their outputs merge and the first non-success
/// result stands for all of them.
pub(crate) fn needs(job: &Job, jobs: &[Job], finished: &[OnceLock<Finished>]) -> Value {
    let mut by_key: BTreeMap<&str, (JobResult, Map<String, Value>)> = BTreeMap::new();
    for &JobId(need) in &job.needs {
        let Some(done) = finished[need].get() else {
            continue;
        };
        let entry = by_key
            .entry(jobs[need].key.as_str())
            .or_insert((JobResult::Success, Map::new()));
        if entry.0 == JobResult::Success {
            entry.0 = done.result;
        }
        for (k, v) in &done.outputs {
            entry.1.insert(k.clone(), Value::String(v.clone()));
        }
    }
    Value::Object(
        by_key
            .into_iter()
            .map(|(key, (result, outputs))| {
                (
                    key.to_owned(),
                    json!({ "result": result_name(result), "outputs": outputs }),
                )
            })
            .collect(),
    )
}

/// Fixed parts of every context in a run.
pub(crate) fn base(
    vars: &BTreeMap<String, String>,
    job: &Job,
    needs: Value,
    temp: &std::path::Path,
) -> Map<String, Value> {
    let mut values = Map::new();
    values.insert("vars".into(), to_object(vars.iter()));
    values.insert(
        "matrix".into(),
        Value::Object(
            job.matrix
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
    );
    values.insert("needs".into(), needs);
    values.insert("steps".into(), Value::Object(Map::new()));
    values.insert("env".into(), Value::Object(Map::new()));
    values.insert("secrets".into(), Value::Object(Map::new()));
    values.insert("git".into(), Value::Object(Map::new()));
    values.insert("inputs".into(), Value::Object(Map::new()));
    values.insert(
        "job".into(),
        json!({ "name": job.name, "status": "success" }),
    );
    values.insert(
        "runner".into(),
        json!({ "os": std::env::consts::OS, "arch": std::env::consts::ARCH, "temp": temp }),
    );
    values
}

/// An object of string values.
pub(crate) fn to_object<'a>(pairs: impl Iterator<Item = (&'a String, &'a String)>) -> Value {
    Value::Object(
        pairs
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// `entries` as an env list when none needs evaluating (later entries
/// win, as in [`render_env`]); `None` if one does.
pub(crate) fn literal_env<'a>(
    entries: impl Iterator<Item = &'a (String, Template)>,
) -> Option<Vec<(String, String)>> {
    let mut env = Vec::new();
    for (name, template) in entries {
        set(&mut env, name, template.as_literal()?.to_owned());
    }
    Some(env)
}

/// Renders `env` entries in order on top of `env`, each seeing the ones
/// before it through the `env` context.
pub(crate) fn render_env(
    entries: &[(String, Template)],
    env: &mut Vec<(String, String)>,
    cx: &mut Context<'_>,
) -> Result<(), String> {
    for (name, template) in entries {
        let value = match template.as_literal() {
            Some(text) => text.to_owned(),
            None => template
                .render(cx)
                .map_err(|e| format!("cannot evaluate env `{name}`: {e}"))?,
        };
        if let Some(Value::Object(map)) = cx.values.get_mut("env") {
            map.insert(name.clone(), Value::String(value.clone()));
        }
        set(env, name, value);
    }
    Ok(())
}

/// Sets `name` in an ordered env list, replacing an earlier value.
pub(crate) fn set(env: &mut Vec<(String, String)>, name: &str, value: String) {
    match env.iter_mut().find(|(k, _)| k == name) {
        Some(slot) => slot.1 = value,
        None => env.push((name.to_owned(), value)),
    }
}

/// Status for the status functions, from what happened so far.
pub(crate) fn status(cancelled: bool, failed: bool) -> Status {
    if cancelled {
        Status::Cancelled
    } else if failed {
        Status::Failure
    } else {
        Status::Success
    }
}
