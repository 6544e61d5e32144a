//! The components of a plan — `uses:` steps, and the strategies and health
//! checks of `deploy:` jobs: each reference resolved, its component loaded
//! (compile cache first) and its metadata checked against the `with:` and
//! `permissions:` written for it — before anything runs.
//!
//! The components come from kiln-fetch (`command/plugin/pipeline.rs`),
//! verified and pinned in `kiln.lock`; a local `.wasm` file that did not
//! exist then (an earlier job builds it) is read when its step runs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use kiln_pipeline::{Diagnostic, FsAccess, Permissions, Plan, Span, StepAction, UsesSpans};
use kiln_wasm::{ArtifactAccess, Limits, NoArtifactStore, Plugin, Runtime, WasmActions, World};

use crate::command::plugin::pipeline::Components;
use crate::deploy_plugins::DeployComponents;

/// What loading a plan's plugins produced.
pub(crate) struct Prepared {
    /// Problems with plugins, pointing into the pipeline file.
    pub diagnostics: Vec<Diagnostic>,
    /// The action host for the run; `None` when the plan has no `uses:`.
    pub actions: Option<Arc<WasmActions>>,
    /// The loaded strategies and health checks of `deploy:` jobs.
    pub deploy: DeployComponents,
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
    /// A remote reference `kiln validate` does not fetch.
    NotFetched(String),
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
        return Err(Unresolved::NotFetched(format!(
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

/// What a component is used as, which decides the world it must
/// implement and what it may be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    /// A `uses:` step.
    Action,
    /// `deploy.strategy`.
    Strategy,
    /// `deploy.health`.
    HealthCheck,
}

impl Role {
    fn world(self) -> World {
        match self {
            Role::Action => World::Action,
            Role::Strategy => World::DeployStrategy,
            Role::HealthCheck => World::HealthCheck,
        }
    }

    /// How the pipeline names the place the component is used.
    fn place(self) -> &'static str {
        match self {
            Role::Action => "a `uses:` step",
            Role::Strategy => "`deploy.strategy`",
            Role::HealthCheck => "`deploy.health`",
        }
    }
}

struct UsesStep<'a> {
    role: Role,
    reference: &'a str,
    with: Vec<&'a str>,
    permissions: &'a Permissions,
    spans: &'a UsesSpans,
}

/// Strategies and health checks are granted nothing the pipeline chooses;
/// not even the workspace (`fs: read` is a step's default, not theirs).
static STRATEGY_GRANTS: std::sync::LazyLock<Permissions> =
    std::sync::LazyLock::new(|| Permissions {
        fs: FsAccess::None,
        ..Permissions::default()
    });

/// A health check may connect to the instance it checks: the entry stands
/// for that address, which the host grants when it calls the check.
static HEALTH_GRANTS: std::sync::LazyLock<Permissions> = std::sync::LazyLock::new(|| Permissions {
    network: vec!["the instance it checks".into()],
    ..STRATEGY_GRANTS.clone()
});

fn uses_of<'a>(plan: &'a Plan) -> Vec<UsesStep<'a>> {
    let mut steps: Vec<UsesStep<'a>> = Vec::new();
    let mut add = |step: UsesStep<'a>| {
        // Matrix instances share their source; check each use once.
        if !steps
            .iter()
            .any(|s| s.spans.reference == step.spans.reference)
        {
            steps.push(step);
        }
    };
    for step in plan.jobs.iter().flat_map(|j| &j.steps) {
        match &step.action {
            StepAction::Uses {
                reference,
                with,
                permissions,
                spans,
            } => add(UsesStep {
                role: Role::Action,
                reference,
                with: with.iter().map(|(k, _)| k.as_str()).collect(),
                permissions,
                spans,
            }),
            StepAction::Deploy(deploy) => {
                let strategy = std::iter::once((Role::Strategy, &deploy.strategy));
                let health = deploy.health.iter().map(|h| (Role::HealthCheck, h));
                for (role, used) in strategy.chain(health) {
                    add(UsesStep {
                        role,
                        reference: &used.uses,
                        with: used.with.iter().map(|(k, _)| k.as_str()).collect(),
                        permissions: match role {
                            Role::HealthCheck => &HEALTH_GRANTS,
                            _ => &STRATEGY_GRANTS,
                        },
                        spans: &used.spans,
                    });
                }
            }
            _ => {}
        }
    }
    steps
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
    let steps = uses_of(plan);
    let mut diagnostics = Vec::new();
    let mut prepared = Prepared {
        diagnostics: Vec::new(),
        actions: None,
        deploy: DeployComponents::default(),
    };
    if steps.is_empty() {
        return prepared;
    }
    let runtime = match Runtime::new(kiln_wasm::default_cache_dir(), Limits::default()) {
        Ok(runtime) => Arc::new(runtime),
        Err(e) => {
            prepared.diagnostics.push(Diagnostic::error(
                "plugin-host",
                steps[0].spans.reference,
                crate::error::chain(&e),
            ));
            return prepared;
        }
    };
    let mut loaded: HashMap<(&str, Role), Option<Arc<Plugin>>> = HashMap::new();
    let async_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    for step in &steps {
        if loaded.contains_key(&(step.reference, step.role)) {
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
        loaded.insert((step.reference, step.role), plugin);
    }
    for step in &steps {
        if let Some(Some(plugin)) = loaded.get(&(step.reference, step.role)) {
            check(plugin, step, &mut diagnostics);
        }
    }
    let stats = runtime.cache_stats();
    tracing::info!(
        compiled = stats.compiled,
        cache_hits = stats.disk_hits,
        "plugins loaded"
    );
    prepared.diagnostics = diagnostics;
    let mut deploy = DeployComponents::new(runtime.clone());
    let mut actions = Vec::new();
    for ((reference, role), plugin) in loaded {
        match (role, plugin) {
            (Role::Action, Some(plugin)) => actions.push((reference, plugin)),
            (Role::Strategy | Role::HealthCheck, Some(plugin)) => deploy.insert(plugin),
            (_, None) => {}
        }
    }
    prepared.deploy = deploy;
    if steps.iter().any(|s| s.role == Role::Action) {
        let root = workspace.to_owned();
        let mut host = WasmActions::new(
            runtime,
            artifacts.unwrap_or_else(|| Arc::new(NoArtifactStore)),
        )
        .with_resolver(move |reference| {
            match resolve(reference, &root, &Components::new()) {
                Ok(r) => Ok((r.bytes, r.digest)),
                Err(
                    Unresolved::Missing(m) | Unresolved::NotFetched(m) | Unresolved::Invalid(m, _),
                ) => Err(m),
            }
        });
        for (reference, plugin) in actions {
            host.insert(reference, plugin);
        }
        prepared.actions = Some(Arc::new(host));
    }
    prepared
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
        // A strategy or health check is needed when the rollout starts,
        // before any step of the run could have built it.
        Err(Unresolved::Missing(message)) if step.role != Role::Action => {
            diagnostics.push(
                Diagnostic::error("plugin-not-found", span, message)
                    .with_help("build the component before `kiln run`, or fix the path"),
            );
            return None;
        }
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
        Err(Unresolved::NotFetched(message)) => {
            diagnostics.push(
                Diagnostic::warning("plugin-not-fetched", span, message)
                    .with_label("not checked by `kiln validate`")
                    .with_help("`kiln plugin install` fetches and checks it now"),
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
    let world = step.role.world();
    match plugin {
        Ok(plugin) if plugin.world == world => Some(plugin),
        Ok(plugin) => {
            diagnostics.push(
                Diagnostic::error(
                    "plugin-load",
                    span,
                    format!(
                        "plugin `{}` is a `{}` component; {} needs {} `{}`",
                        step.reference,
                        plugin.world.name(),
                        step.role.place(),
                        if world == World::Action { "an" } else { "a" },
                        world.name()
                    ),
                )
                .with_label(format!("not a `{}`", world.name()))
                .with_help(format!(
                    "use a component built for `world {}` of `kiln:plugin`",
                    world.name()
                )),
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
    let gaps = plugin.metadata.ungranted(grants);
    if step.role == Role::Action {
        for gap in gaps {
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
    } else if let Some(gap) = gaps.into_iter().next() {
        // The host grants a strategy nothing and a health check its
        // target's address; a component that needs more cannot work.
        let granted = match step.role {
            Role::HealthCheck => "only the address of the instance it checks",
            _ => "nothing: strategies only decide",
        };
        out.push(
            Diagnostic::error(
                "ungranted-capability",
                at,
                format!(
                    "plugin `{name}` needs {}, but {} is granted {granted}",
                    gap.what,
                    step.role.place()
                ),
            )
            .with_label("cannot be granted here")
            .with_help(match step.role {
                Role::HealthCheck => {
                    "use a check that needs no more than the network to its target"
                }
                _ => "use a component that declares no capabilities",
            }),
        );
    }
    let declared = &plugin.metadata.inputs;
    for input in plugin.metadata.missing_inputs(|k| step.with.contains(&k)) {
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
