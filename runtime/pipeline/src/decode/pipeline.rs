//! The top level: `name`, `on`, `env`, `jobs`, `timeout`, `defaults`.

use super::{Decoder, Spellings};
use crate::ast::{Pipeline, RunDefaults};
use crate::diagnostic::Diagnostic;
use crate::source::Span;
use crate::yaml::{Node, NodeKind};

const FIELDS: &[&str] = &[
    "name",
    "on",
    "env",
    "jobs",
    "timeout",
    "defaults",
    "stages",
    "global_env",
];

/// Decodes the document root; `None` root is an empty file.
pub(crate) fn decode(root: Option<&Node>, decoder: &mut Decoder) -> Pipeline {
    let mut pipeline = Pipeline::default();
    let Some(root) = root else {
        decoder.push(
            Diagnostic::error(
                "empty-pipeline",
                Span {
                    line: 1,
                    col: 1,
                    ..Span::default()
                },
                "the file is empty",
            )
            .with_help("a pipeline needs at least `jobs:` with one job that has `steps:`"),
        );
        return pipeline;
    };
    let NodeKind::Mapping(entries) = &root.kind else {
        decoder.push(
            Diagnostic::error(
                "wrong-type",
                root.span,
                format!(
                    "expected a mapping at the top of the pipeline, found {}",
                    root.describe()
                ),
            )
            .with_help(
                "a pipeline starts with `jobs:` (and `name:`, `env:`…) at the start of a line",
            ),
        );
        return pipeline;
    };
    let mut spellings = Spellings::default();
    let mut saw_jobs = false;
    for entry in entries {
        let (key, value) = (&entry.key, &entry.value);
        match key.name.as_str() {
            "name" => pipeline.name = decoder.text(value, "name"),
            // Triggers matter to `kiln serve` (a later milestone); any
            // GitHub shape (`push`, `[push, pull_request]`, `push: [main]`,
            // `push: {branches: …}`) is accepted as written.
            "on" => {}
            "env" | "global_env" => {
                if spellings.claim(decoder, "env", key) {
                    pipeline.env = decoder.pairs(value, &key.name);
                }
            }
            "timeout" => pipeline.timeout = decoder.timeout(value, "timeout"),
            "defaults" => pipeline.defaults = decoder.defaults(value),
            "jobs" | "stages" => {
                if spellings.claim(decoder, "jobs", key) {
                    saw_jobs = true;
                    decode_jobs(value, &key.name, decoder, &mut pipeline);
                }
            }
            // Extension fields (as in Docker Compose) hold anchors to reuse.
            name if name.starts_with("x-") => {}
            _ => decoder.unknown_field(key, "the pipeline", FIELDS),
        }
    }
    if !saw_jobs {
        decoder.push(
            Diagnostic::error("missing-field", root.span, "the pipeline has no `jobs`")
                .with_help("add `jobs:` with at least one job that has `steps:`"),
        );
    }
    pipeline
}

fn decode_jobs(node: &Node, field: &str, decoder: &mut Decoder, pipeline: &mut Pipeline) {
    let Some(entries) = decoder.mapping(node, field) else {
        return;
    };
    if entries.is_empty() {
        decoder.push(
            Diagnostic::error("empty-jobs", node.span, format!("`{field}` has no jobs"))
                .with_help("add at least one job that has `steps:`"),
        );
    }
    pipeline.jobs.reserve(entries.len());
    for entry in entries {
        if let Some(job) = decoder.job(&entry.key, &entry.value) {
            pipeline.jobs.push(job);
        }
    }
}

impl Decoder {
    /// `defaults: { run: { shell, working-directory } }`.
    pub(super) fn defaults(&mut self, node: &Node) -> RunDefaults {
        let mut out = RunDefaults::default();
        let Some(entries) = self.mapping(node, "defaults") else {
            return out;
        };
        for e in entries {
            if e.key.name != "run" {
                self.unknown_field(&e.key, "`defaults`", &["run"]);
                continue;
            }
            let Some(run) = self.mapping(&e.value, "defaults.run") else {
                continue;
            };
            for f in run {
                match f.key.name.as_str() {
                    "shell" => out.shell = self.text(&f.value, "shell"),
                    "working-directory" | "working_directory" => {
                        out.working_directory = self.text(&f.value, "working-directory");
                    }
                    _ => self.unknown_field(
                        &f.key,
                        "`defaults.run`",
                        &["shell", "working-directory"],
                    ),
                }
            }
        }
        out
    }
}
