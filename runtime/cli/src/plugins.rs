//! The `uses:` steps of a plan: each reference resolved, its component
//! loaded (compile cache first) and its metadata checked against the
//! step's `with:` and `permissions:` — before anything runs.
//!
//! The components come from kiln-fetch (`command/plugin/pipeline.rs`),
//! verified and pinned in `kiln.lock`; a local `.wasm` file that did not
//! exist then (an earlier job builds it) is read when its step runs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use kiln_pipeline::{Diagnostic, Permissions, Plan, Span, StepAction, UsesSpans};
use kiln_wasm::{ArtifactAccess, Limits, NoArtifactStore, Plugin, Runtime, WasmActions, World};

use crate::command::plugin::pipeline::Components;

/// What loading a plan's plugins produced.
pub(crate) struct Prepared {
    /// Problems with plugins, pointing into the pipeline file.
    pub diagnostics: Vec<Diagnostic>,
    /// The action host for the run; `None` when the plan has no `uses:`.
    pub actions: Option<Arc<WasmActions>>,
}

/// A component found for a reference.
pub(crate) struct Resolved {
    pub bytes: Vec<u8>,
    pub digest: String,
}

/// Why a reference did not resolve.
pub(crate) enum Unresolved {
    /// A local path with no file (yet).
    Missing(String),
    /// A reference this build cannot resolve: (message, help).
    Invalid(String, String),
}

/// Finds the component `reference` names: among the resolved `components`,
/// else (a local file an earlier job builds) in the workspace.
pub(crate) fn resolve(
    reference: &str,
    workspace: &Path,
    components: &Components,
) -> Result<Resolved, Unresolved> {
    if let Some(component) = components.get(reference) {
        return Ok(Resolved {
            bytes: component.bytes.to_vec(),
            digest: format!("sha256:{}", component.digest.to_hex()),
        });
    }
    let parsed = kiln_fetch::Reference::parse(reference);
    let local = matches!(parsed, Ok(kiln_fetch::Reference::Local { .. }));
    if matches!(parsed, Ok(kiln_fetch::Reference::Bundled { .. })) {
        let bundled: Vec<String> = kiln_bundled::all()
            .iter()
            .map(|b| format!("kiln/{}@{}", b.name, b.major()))
            .collect();
        return Err(Unresolved::Invalid(
            format!("`{reference}` is not a plugin bundled with this kiln"),
            format!("bundled plugins: {}", bundled.join(", ")),
        ));
    }
    if !local {
        // `kiln validate` fetches nothing; `kiln run` resolves it first.
        return Err(Unresolved::Missing(format!(
            "plugin `{reference}` is fetched, then checked, when `kiln run` resolves it"
        )));
    }
    let path = workspace.join(reference);
    let bytes = std::fs::read(&path).map_err(|e| {
        Unresolved::Missing(format!(
            "cannot read plugin `{reference}` (`{}`): {e}",
            path.display()
        ))
    })?;
    let digest = kiln_wasm::sha256(&bytes);
    Ok(Resolved { bytes, digest })
}

struct UsesStep<'a> {
    reference: &'a str,
    with: Vec<&'a str>,
    permissions: &'a Permissions,
    spans: &'a UsesSpans,
}

/// Loads and checks every plugin of `plan`.
/// `artifacts` is what the plugins' `artifacts` import reaches (`None`:
/// nothing will run, e.g. `kiln validate`).
pub(crate) fn prepare(
    plan: &Plan,
    workspace: &Path,
    components: &Components,
    artifacts: Option<Arc<dyn ArtifactAccess>>,
) -> Prepared {
    let mut steps: Vec<UsesStep<'_>> = Vec::new();
    for step in plan.jobs.iter().flat_map(|j| &j.steps) {
        if let StepAction::Uses {
            reference,
            with,
            permissions,
            spans,
        } = &step.action
        {
            // Matrix instances share their source; check each step once.
            if steps.iter().any(|s| s.spans.reference == spans.reference) {
                continue;
            }
            steps.push(UsesStep {
                reference,
                with: with.iter().map(|(k, _)| k.as_str()).collect(),
                permissions,
                spans,
            });
        }
    }
    let mut diagnostics = Vec::new();
    if steps.is_empty() {
        return Prepared {
            diagnostics,
            actions: None,
        };
    }
    let runtime = match Runtime::new(kiln_wasm::default_cache_dir(), Limits::default()) {
        Ok(runtime) => Arc::new(runtime),
        Err(e) => {
            diagnostics.push(Diagnostic::error(
                "plugin-host",
                steps[0].spans.reference,
                crate::error::chain(&e),
            ));
            return Prepared {
                diagnostics,
                actions: None,
            };
        }
    };
    let mut loaded: HashMap<&str, Option<Arc<Plugin>>> = HashMap::new();
    let async_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    for step in &steps {
        if loaded.contains_key(step.reference) {
            continue;
        }
        let plugin = load(
            &runtime,
            &async_runtime,
            step,
            workspace,
            components,
            &mut diagnostics,
        );
        loaded.insert(step.reference, plugin);
    }
    for step in &steps {
        if let Some(Some(plugin)) = loaded.get(step.reference) {
            check(plugin, step, &mut diagnostics);
        }
    }
    let stats = runtime.cache_stats();
    tracing::info!(
        compiled = stats.compiled,
        cache_hits = stats.disk_hits,
        "plugins loaded"
    );
    let root = workspace.to_owned();
    let mut actions = WasmActions::new(
        runtime,
        artifacts.unwrap_or_else(|| Arc::new(NoArtifactStore)),
    )
    .with_resolver(
        move |reference| match resolve(reference, &root, &Components::new()) {
            Ok(r) => Ok((r.bytes, r.digest)),
            Err(Unresolved::Missing(m) | Unresolved::Invalid(m, _)) => Err(m),
        },
    );
    for (reference, plugin) in loaded {
        if let Some(plugin) = plugin {
            actions.insert(reference, plugin);
        }
    }
    Prepared {
        diagnostics,
        actions: Some(Arc::new(actions)),
    }
}

fn load(
    runtime: &Runtime,
    async_runtime: &tokio::runtime::Runtime,
    step: &UsesStep<'_>,
    workspace: &Path,
    components: &Components,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Arc<Plugin>> {
    let span = step.spans.reference;
    let resolved = match resolve(step.reference, workspace, components) {
        Ok(resolved) => resolved,
        Err(Unresolved::Missing(message)) => {
            // An earlier job may build it: checked again when the step runs.
            diagnostics.push(
                Diagnostic::warning("plugin-not-found", span, message)
                    .with_label("checked again when the step runs")
                    .with_help("if no earlier job builds it, fix the path"),
            );
            return None;
        }
        Err(Unresolved::Invalid(message, help)) => {
            diagnostics.push(Diagnostic::error("unknown-plugin", span, message).with_help(help));
            return None;
        }
    };
    let plugin =
        async_runtime.block_on(runtime.load(step.reference, &resolved.bytes, &resolved.digest));
    match plugin {
        Ok(plugin) if plugin.world == World::Action => Some(plugin),
        Ok(plugin) => {
            diagnostics.push(
                Diagnostic::error(
                    "plugin-load",
                    span,
                    format!(
                        "plugin `{}` is a `{}` component; a `uses:` step needs an `action`",
                        step.reference,
                        plugin.world.name()
                    ),
                )
                .with_label("not an action")
                .with_help("use a component built for `world action` of `kiln:plugin`"),
            );
            None
        }
        Err(e) => {
            diagnostics.push(
                Diagnostic::error("plugin-load", span, crate::error::chain(&e))
                    .with_label("this plugin cannot be loaded")
                    .with_help(load_help(&e)),
            );
            None
        }
    }
}

fn load_help(e: &kiln_wasm::WasmError) -> &'static str {
    use kiln_wasm::WasmError as E;
    match e {
        E::NotAComponent { .. } => "build it for `wasm32-wasip2` so it is a component",
        E::UnknownImport { .. } => {
            "build the plugin against the `kiln:plugin` WIT in `wit/` without other imports"
        }
        E::WrongWorld { .. } => "use a component built for `world action` of `kiln:plugin`",
        E::DigestMismatch { .. } => "the file changed since it was pinned; re-pin it",
        _ => "rebuild the plugin, or report a kiln bug if it runs elsewhere",
    }
}

/// Capabilities against grants, and `with:` against declared inputs.
fn check(plugin: &Plugin, step: &UsesStep<'_>, out: &mut Vec<Diagnostic>) {
    let grants = step.permissions;
    let name = step.reference;
    let at = step.spans.permissions.unwrap_or(step.spans.reference);
    for gap in plugin.metadata.ungranted(grants) {
        out.push(
            Diagnostic::error(
                "ungranted-capability",
                at,
                format!(
                    "plugin `{name}` needs {}, which this step does not grant",
                    gap.what
                ),
            )
            .with_label("not granted here")
            .with_help(gap.fix),
        );
    }
    let declared = &plugin.metadata.inputs;
    for input in declared {
        if input.required && input.default.is_none() && !step.with.contains(&input.name.as_str()) {
            let span = step.spans.with_key.unwrap_or(step.spans.reference);
            out.push(
                Diagnostic::error(
                    "missing-input",
                    span,
                    format!(
                        "plugin `{name}` needs input `{}` ({})",
                        input.name, input.description
                    ),
                )
                .with_help(format!("add `{}: …` under `with:`", input.name)),
            );
        }
    }
    for (key, span) in &step.spans.with {
        if declared.iter().any(|i| i.name == *key) {
            continue;
        }
        out.push(unknown_input(
            name,
            key,
            *span,
            declared.iter().map(|i| i.name.as_str()),
        ));
    }
}

fn unknown_input<'a>(
    plugin: &str,
    key: &str,
    span: Span,
    known: impl Iterator<Item = &'a str> + Clone,
) -> Diagnostic {
    let best = known
        .clone()
        .map(|k| (strsim::damerau_levenshtein(k, key), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min();
    let help = match best {
        Some((_, k)) => format!("did you mean `{k}`?"),
        None => {
            let all: Vec<String> = known.map(|k| format!("`{k}`")).collect();
            if all.is_empty() {
                "this plugin takes no inputs; remove it".into()
            } else {
                format!("this plugin takes {}", all.join(", "))
            }
        }
    };
    Diagnostic::error(
        "unknown-input",
        span,
        format!("plugin `{plugin}` has no input `{key}`"),
    )
    .with_help(help)
}
