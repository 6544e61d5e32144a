//! Tests of [`load`](crate::load) through its public contract: YAML in,
//! plan or exact diagnostics out.

mod artifacts;
mod decode;
mod deploy;
mod expressions;
mod graph;
mod hostile;

use crate::{LoadError, LoadOptions, Loaded, Plan, SourceFile, load};

fn try_load(yaml: &str) -> Result<Loaded, LoadError> {
    try_load_with(yaml, &LoadOptions::default())
}

fn try_load_with(yaml: &str, options: &LoadOptions) -> Result<Loaded, LoadError> {
    load(&SourceFile::new("ci/pipeline.yml", yaml), options)
}

/// Every diagnostic as `LINE:COL CODE MESSAGE`.
fn problems(yaml: &str) -> Vec<String> {
    match try_load(yaml) {
        Ok(l) => panic!("expected errors, loaded with warnings {:?}", l.warnings),
        Err(e) => e
            .diagnostics
            .iter()
            .map(|d| format!("{}:{} {} {}", d.span.line, d.span.col, d.code, d.message))
            .collect(),
    }
}

fn plan(yaml: &str) -> Plan {
    match try_load(yaml) {
        Ok(l) => l.plan,
        Err(e) => panic!("{:#?}", e.diagnostics),
    }
}

fn warnings(yaml: &str) -> Vec<String> {
    match try_load(yaml) {
        Ok(l) => l
            .warnings
            .iter()
            .map(|d| format!("{}:{} {} {}", d.span.line, d.span.col, d.code, d.message))
            .collect(),
        Err(e) => panic!("{:#?}", e.diagnostics),
    }
}

fn names(plan: &Plan) -> Vec<&str> {
    plan.jobs.iter().map(|j| j.name.as_str()).collect()
}
