//! `artifacts:` and `cache:` on a job.

use super::Decoder;
use crate::artifact;
use crate::ast::{Artifact, Cache, Text};
use crate::diagnostic::Diagnostic;
use crate::yaml::{Key, Node, NodeKind};

const CACHE_FIELDS: &[&str] = &["key", "restore-keys", "paths"];

impl Decoder {
    /// `artifacts: { NAME: PATH | [PATH…] }`.
    pub(super) fn artifacts(&mut self, node: &Node) -> Vec<Artifact> {
        let Some(entries) = self.mapping(node, "artifacts") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in entries {
            if let Err(message) = artifact::check_name(&e.key.name) {
                self.push(
                    Diagnostic::error("invalid-name", e.key.span, message)
                        .with_label("not a valid artifact name")
                        .with_help("use letters, digits, `-`, `_` and `.`, without `/` or `..`"),
                );
                continue;
            }
            let field = format!("artifacts.{}", e.key.name);
            let paths = self.paths(&e.value, &field, true);
            if paths.is_empty() && !e.value.is_null() {
                continue; // already reported
            }
            if paths.is_empty() {
                self.push(
                    Diagnostic::error(
                        "invalid-value",
                        e.key.span,
                        format!("artifact `{}` has no paths", e.key.name),
                    )
                    .with_help("give a path or a list of paths: `app: target/release/app`"),
                );
                continue;
            }
            out.push(Artifact {
                name: e.key.name.clone(),
                paths,
            });
        }
        out
    }

    /// `cache: { key, restore-keys, paths }`.
    pub(super) fn cache(&mut self, key: &Key, node: &Node) -> Option<Cache> {
        let entries = self.mapping(node, "cache")?;
        let mut cache_key = None;
        let mut restore_keys = Vec::new();
        let mut paths = None;
        for e in entries {
            match e.key.name.as_str() {
                "key" => cache_key = self.text(&e.value, "cache.key"),
                "restore-keys" => {
                    restore_keys =
                        self.string_list(&e.value, "a list of key prefixes", "cache.restore-keys")
                }
                "paths" => paths = Some(self.paths(&e.value, "cache.paths", false)),
                _ => self.unknown_field(&e.key, "`cache`", CACHE_FIELDS),
            }
        }
        let missing = |decoder: &mut Self, field: &str, help: &str| {
            decoder.push(
                Diagnostic::error(
                    "missing-field",
                    key.span,
                    format!("`cache` needs `{field}`"),
                )
                .with_help(help.to_owned()),
            );
        };
        if cache_key.is_none() && !entries.iter().any(|e| e.key.name == "key") {
            missing(self, "key", "add `key: name-${{ hashFiles('lockfile') }}`");
        }
        let given = entries.iter().find(|e| e.key.name == "paths").map(|e| {
            !e.value.is_null()
                && !matches!(&e.value.kind, NodeKind::Sequence(items) if items.is_empty())
        });
        match given {
            None => missing(self, "paths", "add `paths: [dir]` with what to cache"),
            Some(false) => missing(self, "paths", "list at least one path"),
            Some(true) => {} // invalid ones were reported one by one
        }
        Some(Cache {
            key: cache_key?,
            restore_keys,
            paths: paths.unwrap_or_default(),
        })
    }

    /// A path or list of paths, each checked ([`artifact::check_path`]).
    fn paths(&mut self, node: &Node, field: &str, workspace_only: bool) -> Vec<Text> {
        let mut out = Vec::new();
        for text in self.string_list(node, "a path or a list of paths", field) {
            match artifact::check_path(&text.value, workspace_only) {
                Ok(()) => out.push(text),
                Err(message) => self.push(
                    Diagnostic::error("invalid-path", text.span, message)
                        .with_label("not allowed here")
                        .with_help(crate::artifact::PATH_HELP),
                ),
            }
        }
        out
    }
}
