//! `uses:` steps: [`WasmActions`] is the engine's [`ActionExecutor`].

use std::collections::HashMap;
use std::sync::Arc;

use kiln_engine::{
    ActionExecutor, ActionExit, ActionRequest, BoxFuture, OutputSender, StepControl, Stream,
};
use kiln_pipeline::FsAccess;
use wasmtime::component::ResourceTable;

use crate::artifacts::ArtifactAccess;
use crate::bindings::v0_1::action::kiln::plugin::action_types::Context;
use crate::bindings::v0_1::types::KeyValue;
use crate::bounded::{Cut, Outputs, RawActionError, RawRunResult, TooBig};
use crate::output::Pipe;
use crate::runtime::{Plugin, Pre, Runtime, stopped};
use crate::sandbox::{NetworkGrant, Sandbox, WORKSPACE_GUEST_PATH};
use crate::state::HostState;
use crate::trap::{self, Interrupted};

/// The plugin steps of one run: loaded components by `uses:` reference.
pub struct WasmActions {
    runtime: Arc<Runtime>,
    plugins: HashMap<String, Arc<Plugin>>,
    artifacts: Arc<dyn ArtifactAccess>,
    resolver: Option<Arc<Resolver>>,
    guests: Guests,
}

/// The threads guests run on. A guest computes until an epoch tick makes
/// it yield; on the engine's own (single) thread that would delay every
/// other job's output and timers, so guests get a runtime of their own.
struct Guests(Option<tokio::runtime::Runtime>);

impl Guests {
    fn new() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("kiln-wasm-guest")
            .on_thread_start(kiln_engine::process::leave_signals_to_the_engine_thread)
            .enable_all()
            .build()
            .ok();
        Self(runtime)
    }
}

impl Drop for Guests {
    fn drop(&mut self) {
        // Dropped from inside the engine's runtime: must not block there.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Finds a reference's bytes and digest when the step runs (a component
/// an earlier job built).
pub type Resolver = dyn Fn(&str) -> Result<(Vec<u8>, String), String> + Send + Sync;

impl std::fmt::Debug for WasmActions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmActions")
            .field("plugins", &self.plugins.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl WasmActions {
    /// Plugin steps run on `runtime` with `artifacts` behind the
    /// `artifacts` import.
    pub fn new(runtime: Arc<Runtime>, artifacts: Arc<dyn ArtifactAccess>) -> Self {
        Self {
            runtime,
            plugins: HashMap::new(),
            artifacts,
            resolver: None,
            guests: Guests::new(),
        }
    }

    /// Loads references that were not inserted when their step runs.
    pub fn with_resolver(
        mut self,
        resolver: impl Fn(&str) -> Result<(Vec<u8>, String), String> + Send + Sync + 'static,
    ) -> Self {
        self.resolver = Some(Arc::new(resolver));
        self
    }

    /// Makes `plugin` the component run for `uses: <reference>`.
    pub fn insert(&mut self, reference: impl Into<String>, plugin: Arc<Plugin>) {
        self.plugins.insert(reference.into(), plugin);
    }
}

impl ActionExecutor for WasmActions {
    fn run_action(
        &self,
        request: ActionRequest,
        output: OutputSender,
        control: StepControl,
    ) -> BoxFuture<'static, ActionExit> {
        let plugin = self.plugins.get(&request.reference).cloned();
        let runtime = self.runtime.clone();
        let artifacts = self.artifacts.clone();
        let resolver = self.resolver.clone();
        let step = async move {
            let plugin = match plugin {
                Some(plugin) => plugin,
                None => match load_late(&runtime, resolver.as_deref(), &request).await {
                    Ok(plugin) => plugin,
                    Err(exit) => return exit,
                },
            };
            run(&runtime, &plugin, request, output, control, artifacts).await
        };
        let Some(guests) = &self.guests.0 else {
            return Box::pin(step);
        };
        let task = guests.spawn(step);
        Box::pin(async move {
            // A panic in host code fails this step only.
            task.await.unwrap_or_else(|e| {
                ActionExit::Infrastructure(format!("the plugin host failed running this step: {e}"))
            })
        })
    }
}

/// Loads a plugin that did not exist before the run, and checks its
/// capabilities against the grants as `kiln validate` would have.
async fn load_late(
    runtime: &Runtime,
    resolver: Option<&Resolver>,
    request: &ActionRequest,
) -> Result<Arc<Plugin>, ActionExit> {
    let reference = &request.reference;
    let Some(resolver) = resolver else {
        return Err(ActionExit::Infrastructure(format!(
            "plugin `{reference}` was not loaded before the run"
        )));
    };
    let (bytes, digest) = resolver(reference).map_err(ActionExit::Failed)?;
    let plugin = runtime
        .load(reference, &bytes, &digest)
        .await
        .map_err(|e| ActionExit::Failed(e.with_causes()))?;
    if let Some(gap) = plugin.metadata.ungranted(&request.permissions).first() {
        return Err(ActionExit::Failed(format!(
            "plugin `{reference}` needs {}, which this step does not grant: {}",
            gap.what, gap.fix
        )));
    }
    Ok(plugin)
}

async fn run(
    runtime: &Runtime,
    plugin: &Plugin,
    request: ActionRequest,
    output: OutputSender,
    control: StepControl,
    artifacts: Arc<dyn ArtifactAccess>,
) -> ActionExit {
    let Pre::Action(pre) = &plugin.pre else {
        return ActionExit::Infrastructure(format!(
            "plugin `{}` is a `{}` component, not an action",
            plugin.reference,
            plugin.world.name()
        ));
    };
    let inputs = match inputs(plugin, &request.inputs) {
        Ok(inputs) => inputs,
        Err(message) => return ActionExit::Failed(message),
    };
    let network = match resolve_grant(&request.permissions.network).await {
        Ok(network) => network,
        Err(exit) => return exit,
    };
    let limit = runtime.limits.output;
    let stdout = Pipe::new(Stream::Stdout, output.clone(), limit);
    let stderr = Pipe::new(Stream::Stderr, output, limit);
    let fs = request.permissions.fs;
    let workspace = (fs != FsAccess::None).then_some(request.workspace.as_path());
    let wasi = Sandbox {
        permissions: &request.permissions,
        workspace,
        env: &request.env,
        network,
        stdout: stdout.clone(),
        stderr: stderr.clone(),
    }
    .build();
    let wasi = match wasi {
        Ok(wasi) => wasi,
        Err(message) => return ActionExit::Infrastructure(message),
    };
    let state = HostState {
        wasi,
        table: ResourceTable::new(),
        limits: runtime.store_limits(),
        log: Some(stderr.clone()),
        secrets: request.secrets,
        artifacts,
        job: request.job.clone(),
        workspace: (fs != FsAccess::None).then(|| (request.workspace.clone(), fs)),
    };
    // The guest is interrupted at the deadline by the epoch callback, to
    // the tick, even when the engine's timer runs late; the engine reports
    // any step that ended past its deadline as timed out.
    let mut store = runtime.store(
        state,
        request.deadline,
        Some((control.stop.clone(), control.kill.clone())),
    );
    let context = Context {
        inputs: inputs
            .into_iter()
            .map(|(key, value)| KeyValue { key, value })
            .collect(),
        workspace: (fs != FsAccess::None).then(|| WORKSPACE_GUEST_PATH.to_owned()),
        job: request.job,
        step: request.step_name,
        run_id: u64::try_from(request.run_id).unwrap_or_default(),
    };
    let explain = |e: wasmtime::Error| {
        if e.downcast_ref::<Interrupted>().is_some() {
            // The engine reports the timeout or cancellation itself.
            return ActionExit::Failed(Interrupted.to_string());
        }
        if let Some(TooBig(why)) = e.downcast_ref::<TooBig>() {
            return ActionExit::Failed(format!(
                "plugin `{}` returned too much: {why}; write large values to a file or an artifact instead",
                plugin.reference
            ));
        }
        ActionExit::Failed(format!(
            "plugin `{}` failed: {}",
            plugin.reference,
            trap::explain(&e, runtime.limits.memory)
        ))
    };
    let call = async {
        let instance = pre.instance_pre().instantiate_async(&mut store).await?;
        // Through bounded types rather than the bindings' `call_run`, so
        // outputs and messages are checked before they are copied.
        let run = instance.get_typed_func::<(&Context,), (RawRunResult,)>(&mut store, "run")?;
        let (returned,) = run.call_async(&mut store, (&context,)).await?;
        Ok::<_, wasmtime::Error>(returned)
    };
    let stop = (control.stop.clone(), control.kill.clone());
    let returned = tokio::select! {
        returned = call => match returned {
            Ok(returned) => returned,
            Err(e) => return explain(e),
        },
        // Dropping the call ends a guest blocked in a host call, which the
        // epoch callback never sees.
        () = stopped(request.deadline, Some(&stop)) => {
            return ActionExit::Failed(Interrupted.to_string());
        }
    };
    for pipe in [&stdout, &stderr] {
        if pipe.truncated() {
            return ActionExit::Failed(format!(
                "plugin `{}` wrote more than {} bytes to {}; the rest was discarded",
                plugin.reference,
                pipe.limit(),
                pipe.name()
            ));
        }
    }
    match returned {
        Ok(Outputs(outputs)) => ActionExit::Success(outputs),
        Err(RawActionError::InvalidInput(Cut(message))) => ActionExit::Failed(format!(
            "plugin `{}` rejected its inputs: {message}",
            plugin.reference
        )),
        Err(RawActionError::Failed(Cut(message))) => {
            ActionExit::Failed(format!("plugin `{}` failed: {message}", plugin.reference))
        }
    }
}

/// Resolves `permissions.network`; only host names need the (blocking)
/// resolver, so literal addresses and no grant at all cost no thread hop.
async fn resolve_grant(entries: &[String]) -> Result<NetworkGrant, ActionExit> {
    let literal = entries
        .iter()
        .all(|e| e.parse::<std::net::SocketAddr>().is_ok());
    if literal {
        return NetworkGrant::resolve(entries).map_err(from_permissions);
    }
    let entries = entries.to_vec();
    match tokio::task::spawn_blocking(move || NetworkGrant::resolve(&entries)).await {
        Ok(grant) => grant.map_err(from_permissions),
        Err(e) => Err(ActionExit::Infrastructure(format!(
            "cannot resolve the network grant: {e}"
        ))),
    }
}

fn from_permissions(message: String) -> ActionExit {
    ActionExit::Failed(format!("{message} (in `permissions.network`)"))
}

/// `with:` inputs with the metadata's defaults filled in; a missing
/// required one is an error (validate reports it earlier, with a span).
fn inputs(plugin: &Plugin, given: &[(String, String)]) -> Result<Vec<(String, String)>, String> {
    let is_given = |name: &str| given.iter().any(|(k, _)| k == name);
    if let Some(spec) = plugin.metadata.missing_inputs(is_given).next() {
        return Err(format!(
            "plugin `{}` needs input `{}`: add it under `with:`",
            plugin.reference, spec.name
        ));
    }
    Ok(plugin.metadata.with_defaults(given))
}
