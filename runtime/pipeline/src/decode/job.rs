//! One job: its fields, the seed aliases, and seed features delivered later.

use std::time::Duration;

use super::{Decoder, Spellings};
use crate::ast::{Job, RunDefaults};
use crate::diagnostic::Diagnostic;
use crate::plan::{RetryOn, RetryPolicy};
use crate::suggest;
use crate::yaml::{Key, Node, NodeKind, ScalarType};

const FIELDS: &[&str] = &[
    "name",
    "needs",
    "if",
    "env",
    "image",
    "steps",
    "timeout",
    "timeout-minutes",
    "retry",
    "continue-on-error",
    "strategy",
    "outputs",
    "defaults",
    "services",
    "container",
    "resources",
    "artifacts",
    "download",
    "cache",
    "deploy",
    // Seed-document spellings.
    "depends_on",
    "retry_count",
    "environment",
    "executor",
    "manual_approval",
];

const RETRY_FIELDS: &[&str] = &["max", "backoff", "max-backoff", "on"];
const RETRY_ON: &[&str] = &["timeout", "infrastructure", "any"];

/// The seed's named executors have no counterpart: images do that job.
const EXECUTOR: &str = "kiln runs a job in a container when it has `image:`";
/// Seed deployment fields that `deploy:` replaces.
const DEPLOY: &str = "describe the rollout with a `deploy:` job (docs/deploy.md)";

/// `[A-Za-z_][A-Za-z0-9_-]*`: safe in logs, paths and `needs.<job>`.
pub(crate) fn is_valid_job_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Decoder {
    /// Decodes `key: value` under `jobs:`.
    pub(super) fn job(&mut self, key: &Key, node: &Node) -> Option<Job> {
        if !is_valid_job_name(&key.name) {
            self.push(
                Diagnostic::error("invalid-name", key.span, format!("invalid job name `{}`", key.name))
                    .with_help("job names start with a letter or `_` and contain only letters, digits, `-` and `_`"),
            );
        }
        let context = format!("job `{}`", key.name);
        let NodeKind::Mapping(entries) = &node.kind else {
            self.wrong_type(node, "a mapping of job fields", &key.name);
            return None;
        };
        let mut job = Job {
            key: key.name.clone(),
            key_span: key.span,
            title: None,
            needs: Vec::new(),
            condition: None,
            env: Vec::new(),
            image: None,
            container: Default::default(),
            services: Vec::new(),
            steps: Vec::new(),
            timeout: None,
            retry: RetryPolicy::default(),
            continue_on_error: false,
            matrix: None,
            outputs: Vec::new(),
            defaults: RunDefaults::default(),
            artifacts: Vec::new(),
            download: None,
            cache: None,
            deploy: None,
        };
        let mut spellings = Spellings::default();
        let mut steps_node = None;
        let mut deploys = false;
        for entry in entries {
            let (k, v) = (&entry.key, &entry.value);
            match k.name.as_str() {
                "name" => job.title = self.text(v, "name"),
                "needs" | "depends_on" => {
                    if spellings.claim(self, "needs", k) {
                        job.needs = self.string_list(v, "a list of job names", &k.name);
                    }
                }
                "if" => job.condition = self.text(v, "if"),
                "env" => {
                    if spellings.claim(self, "env", k) {
                        job.env = self.pairs(v, "env");
                    }
                }
                // The seed uses `environment:` both for env vars (a mapping)
                // and for a deployment target (a name).
                "environment" if matches!(v.kind, NodeKind::Mapping(_)) => {
                    if spellings.claim(self, "env", k) {
                        job.env = self.pairs(v, "environment");
                    }
                }
                "environment" => {
                    self.not_yet_supported(k.span, "the deployment `environment`", DEPLOY)
                }
                "manual_approval" => self.not_yet_supported(
                    k.span,
                    "`manual_approval`",
                    "use `approval: manual` under `deploy:`",
                ),
                "deploy" => {
                    // A deploy job's work is the rollout; it has no steps.
                    deploys = true;
                    job.deploy = self.deploy(k, v, &key.name).map(Box::new);
                }
                "executor" => self.not_yet_supported(k.span, "`executor`", EXECUTOR),
                "services" => job.services = self.services(v),
                "container" => self.container(v, &mut job.container),
                "resources" => self.resources(v, &mut job.container.resources),
                "artifacts" => job.artifacts = self.artifacts(v),
                "download" => {
                    job.download = Some(self.string_list(v, "a list of artifact names", "download"))
                }
                "cache" => job.cache = self.cache(k, v),
                "image" => job.image = self.text(v, "image"),
                "steps" => steps_node = Some(v),
                "timeout" | "timeout-minutes" => {
                    if spellings.claim(self, "timeout", k) {
                        job.timeout = self.any_timeout(k, v);
                    }
                }
                "retry" | "retry_count" => {
                    if spellings.claim(self, "retry", k) {
                        self.retry(k, v, &mut job.retry);
                    }
                }
                "continue-on-error" => {
                    job.continue_on_error = self.boolean(v, "continue-on-error").unwrap_or(false)
                }
                "strategy" => job.matrix = self.strategy(v),
                "outputs" => job.outputs = self.pairs(v, "outputs"),
                "defaults" => job.defaults = self.defaults(v),
                name if name.starts_with("x-") => {}
                _ => self.unknown_field(k, &context, FIELDS),
            }
        }
        match steps_node {
            Some(node) if deploys => self.push(
                Diagnostic::error(
                    "conflicting-fields",
                    node.span,
                    format!("job `{}` has both `deploy` and `steps`", key.name),
                )
                .with_help(
                    "a deploy job's work is the rollout: move the steps into a job it `needs`",
                ),
            ),
            Some(node) => job.steps = self.steps(node, &key.name),
            None if deploys => {}
            None => self.push(
                Diagnostic::error(
                    "empty-steps",
                    key.span,
                    format!("job `{}` has no steps", key.name),
                )
                .with_help("add `steps:` with at least one `run:` or `uses:` step"),
            ),
        }
        Some(job)
    }

    /// `timeout: 20m` / `timeout: 90` or GitHub's `timeout-minutes: 20`.
    pub(super) fn any_timeout(&mut self, key: &Key, value: &Node) -> Option<Duration> {
        if key.name == "timeout-minutes" {
            let minutes = self.integer(value, "timeout-minutes", 1, 72 * 60)?;
            return Some(Duration::from_secs(u64::from(minutes) * 60));
        }
        self.timeout(value, &key.name)
    }

    /// `retry: {max, backoff, max-backoff, on}`, `retry: N`, or the seed's
    /// `retry_count: N`. `N` is the number of *re*-tries: N retries make
    /// N + 1 attempts.
    fn retry(&mut self, key: &Key, value: &Node, out: &mut RetryPolicy) {
        let shorthand = matches!(value.scalar().map(|s| s.ty()), Some(ScalarType::Int(_)));
        if key.name == "retry_count" || shorthand {
            if let Some(n) = self.integer(value, &key.name, 0, 10) {
                out.max_attempts = n + 1;
            }
            return;
        }
        let Some(entries) = self.mapping(value, "retry") else {
            return;
        };
        for e in entries {
            let v = &e.value;
            match e.key.name.as_str() {
                "max" => {
                    if let Some(n) = self.integer(v, "retry.max", 0, 10) {
                        out.max_attempts = n + 1;
                    }
                }
                "backoff" => out.backoff = self.backoff(v, "retry.backoff").unwrap_or(out.backoff),
                "max-backoff" => {
                    out.max_backoff = self
                        .backoff(v, "retry.max-backoff")
                        .unwrap_or(out.max_backoff)
                }
                "on" => out.on = self.retry_on(v),
                _ => self.unknown_field(&e.key, "`retry`", RETRY_FIELDS),
            }
        }
    }

    fn retry_on(&mut self, node: &Node) -> Vec<RetryOn> {
        let mut on = Vec::new();
        for text in self.string_list(node, "a list of failure kinds", "retry.on") {
            let kind = match text.value.as_str() {
                "timeout" => RetryOn::Timeout,
                "infrastructure" => RetryOn::Infrastructure,
                "any" => RetryOn::Any,
                other => {
                    let mut d = Diagnostic::error(
                        "invalid-value",
                        text.span,
                        format!("unknown failure kind `{other}` in `retry.on`"),
                    );
                    d.help = suggest::help(other, RETRY_ON.iter().copied(), || {
                        Some("use `timeout`, `infrastructure` or `any`".into())
                    });
                    self.push(d);
                    continue;
                }
            };
            if !on.contains(&kind) {
                on.push(kind);
            }
        }
        on
    }

    fn steps(&mut self, node: &Node, job: &str) -> Vec<crate::ast::Step> {
        let items: &[Node] = match &node.kind {
            NodeKind::Sequence(items) => items,
            _ if node.is_null() => &[],
            _ => {
                self.wrong_type(node, "a list of steps", "steps");
                return Vec::new();
            }
        };
        if items.is_empty() {
            self.push(
                Diagnostic::error(
                    "empty-steps",
                    node.span,
                    format!("job `{job}` has no steps"),
                )
                .with_help("add at least one `run:` or `uses:` step"),
            );
        }
        // Sized to the items: `collect` through `filter_map` would start
        // at four steps (2.8 KB) per job, most of a large pipeline's heap.
        let mut steps = Vec::with_capacity(items.len());
        steps.extend(items.iter().filter_map(|item| self.step(item)));
        steps
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid_job_name;

    #[test]
    fn job_names() {
        for ok in ["build", "_x", "deploy_staging", "a-b-1"] {
            assert!(is_valid_job_name(ok), "{ok}");
        }
        for bad in ["", "1build", "-x", "a b", "a.b", "ünï"] {
            assert!(!is_valid_job_name(bad), "{bad}");
        }
    }
}
