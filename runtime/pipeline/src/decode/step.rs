//! One step: `run:` / `uses:` / a seed step kind, and its settings.

use super::{Decoder, Spellings};
use crate::artifact;
use crate::ast::{Step, StepKind, Text};
use crate::diagnostic::Diagnostic;
use crate::plan::{FsAccess, Permissions};
use crate::yaml::{Node, NodeKind};

const FIELDS: &[&str] = &[
    "id",
    "name",
    "run",
    "uses",
    "shell",
    "working-directory",
    "with",
    "permissions",
    "env",
    "if",
    "timeout",
    "timeout-minutes",
    "continue-on-error",
    "image",
    // Seed-document spellings and step kinds.
    "script",
    "environment",
    "working_directory",
    "checkout",
    "artifact",
    "download_artifact",
];

const PERMISSION_FIELDS: &[&str] = &["fs", "network", "env", "secrets"];

impl Decoder {
    /// Decodes one item of `steps:`; `None` if it is not a mapping.
    pub(super) fn step(&mut self, node: &Node) -> Option<Step> {
        let NodeKind::Mapping(entries) = &node.kind else {
            self.wrong_type(node, "a mapping of step fields", "steps");
            return None;
        };
        let mut step = Step {
            span: node.span,
            id: None,
            name: None,
            kind: StepKind::Invalid,
            image: None,
            condition: None,
            env: Vec::new(),
            timeout: None,
            continue_on_error: false,
            shell: None,
            working_directory: None,
            with: Vec::new(),
            with_key: None,
            permissions: Permissions::default(),
            permissions_key: None,
        };
        let mut spellings = Spellings::default();
        let mut actions: Vec<&str> = Vec::new();
        for entry in entries {
            let (k, v) = (&entry.key, &entry.value);
            match k.name.as_str() {
                "id" => step.id = self.text(v, "id"),
                "name" => step.name = self.text(v, "name"),
                "run" => {
                    actions.push("run");
                    if let Some(t) = self.text(v, "run") {
                        step.kind = StepKind::Run(t);
                    }
                }
                "script" => {
                    actions.push("script");
                    if let Some(t) = self.script(v) {
                        step.kind = StepKind::Run(t);
                    }
                }
                "uses" => {
                    actions.push("uses");
                    if let Some(t) = self.text(v, "uses") {
                        step.kind = StepKind::Uses(t);
                    }
                }
                kind @ ("artifact" | "download_artifact") => {
                    actions.push(kind);
                    if let Some(kind) = self.artifact_step(kind, v) {
                        step.kind = kind;
                    }
                }
                kind @ "checkout" => {
                    actions.push(kind);
                    let message = unsupported_kind(kind);
                    self.push(
                        Diagnostic::warning("not-yet-supported", k.span, message.clone())
                            .with_label("this step will fail when it runs"),
                    );
                    step.kind = StepKind::Unsupported {
                        kind: kind.to_owned(),
                        message,
                    };
                }
                "shell" => step.shell = self.text(v, "shell"),
                "working-directory" | "working_directory" => {
                    if spellings.claim(self, "working-directory", k) {
                        step.working_directory = self.text(v, &k.name);
                    }
                }
                "with" => {
                    step.with_key = Some(k.span);
                    step.with = self.pairs(v, "with");
                }
                "permissions" => {
                    step.permissions_key = Some(k.span);
                    step.permissions = self.permissions(v);
                }
                "env" | "environment" => {
                    if spellings.claim(self, "env", k) {
                        step.env = self.pairs(v, &k.name);
                    }
                }
                "if" => step.condition = self.text(v, "if"),
                "timeout" | "timeout-minutes" => {
                    if spellings.claim(self, "timeout", k) {
                        step.timeout = self.any_timeout(k, v);
                    }
                }
                "continue-on-error" => {
                    step.continue_on_error = self.boolean(v, "continue-on-error").unwrap_or(false);
                }
                "image" => step.image = self.text(v, "image"),
                "retry_count" => self.not_yet_supported(
                    k.span,
                    "a step-level `retry_count`",
                    "retries apply to whole jobs: set `retry:` on the job",
                ),
                _ => self.unknown_field(k, "a step", FIELDS),
            }
        }
        if let (Some(image), StepKind::Uses(_)) = (&step.image, &step.kind) {
            self.push(
                Diagnostic::error(
                    "invalid-step",
                    image.span,
                    "`image` applies to `run:` steps; a `uses:` plugin runs in kiln's WASI sandbox",
                )
                .with_help("remove `image`, or make the step a `run:` script"),
            );
        }
        match actions.as_slice() {
            [_] => {}
            [] => {
                step.kind = StepKind::Invalid;
                self.push(
                    Diagnostic::error(
                        "invalid-step",
                        node.span,
                        "this step has neither `run` nor `uses`",
                    )
                    .with_help("give the step a `run:` script or a `uses:` plugin reference"),
                );
            }
            [first, second, ..] => {
                step.kind = StepKind::Invalid;
                self.push(
                    Diagnostic::error(
                        "invalid-step",
                        node.span,
                        format!(
                            "this step has both `{first}` and `{second}`; a step does one thing"
                        ),
                    )
                    .with_help("split it into two steps"),
                );
            }
        }
        Some(step)
    }

    /// The seed's `script:` — a string, or a list of lines joined by `\n`.
    fn script(&mut self, node: &Node) -> Option<Text> {
        if let NodeKind::Sequence(items) = &node.kind {
            let lines: Vec<String> = items
                .iter()
                .filter_map(|i| self.text(i, "script"))
                .map(|t| t.value)
                .collect();
            return Some(Text {
                value: lines.join("\n"),
                span: node.span,
                verbatim_at: None,
            });
        }
        self.text(node, "script")
    }

    /// The seed's `artifact: PATH` and `download_artifact: PATH`: the
    /// artifact is named after its path (`dist/` → `dist`).
    fn artifact_step(&mut self, kind: &str, node: &Node) -> Option<StepKind> {
        let path = self.text(node, kind)?;
        if let Err(message) = artifact::check_path(&path.value, true) {
            self.push(
                Diagnostic::error("invalid-path", path.span, message)
                    .with_help(crate::artifact::PATH_HELP),
            );
            return None;
        }
        let name = artifact::name_for_path(&path.value);
        if let Err(message) = artifact::check_name(&name) {
            self.push(
                Diagnostic::error("invalid-name", path.span, message)
                    .with_help("the artifact is named after the path: name a file or directory"),
            );
            return None;
        }
        Some(if kind == "artifact" {
            StepKind::UploadArtifact {
                name,
                path: path.value.trim().trim_start_matches("./").to_owned(),
            }
        } else {
            StepKind::DownloadArtifact { name }
        })
    }

    fn permissions(&mut self, node: &Node) -> Permissions {
        let mut out = Permissions::default();
        let Some(entries) = self.mapping(node, "permissions") else {
            return out;
        };
        for e in entries {
            let v = &e.value;
            match e.key.name.as_str() {
                "fs" => match self
                    .text(v, "permissions.fs")
                    .as_ref()
                    .map(|t| t.value.as_str())
                {
                    Some("none") => out.fs = FsAccess::None,
                    Some("read") => out.fs = FsAccess::Read,
                    Some("write") => out.fs = FsAccess::Write,
                    Some(other) => self.push(
                        Diagnostic::error(
                            "invalid-value",
                            v.span,
                            format!("unknown workspace access `{other}` in `permissions.fs`"),
                        )
                        .with_help("use `none`, `read` or `write`"),
                    ),
                    None => {}
                },
                "network" => {
                    out.network = self.names(v, "permissions.network", "a list of `host:port`")
                }
                "env" => out.env = self.names(v, "permissions.env", "a list of variable names"),
                "secrets" => {
                    out.secrets = self.names(v, "permissions.secrets", "a list of secret names")
                }
                _ => self.unknown_field(&e.key, "`permissions`", PERMISSION_FIELDS),
            }
        }
        out
    }

    fn names(&mut self, node: &Node, field: &str, expected: &str) -> Vec<String> {
        self.string_list(node, expected, field)
            .into_iter()
            .map(|t| t.value)
            .collect()
    }
}

fn unsupported_kind(kind: &str) -> String {
    format!(
        "`{kind}` steps are not supported yet: kiln runs jobs in the workspace that holds the \
         pipeline, so the code is already there; remove the step"
    )
}
