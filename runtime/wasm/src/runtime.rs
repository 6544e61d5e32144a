//! The wasmtime engine kiln shares across steps: configuration, limits,
//! the epoch ticker, the compile cache and loaded components.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimitsBuilder,
    UpdateDeadline,
};

use crate::artifacts::{ArtifactAccess, NoArtifactStore};
use crate::bindings::v0_1;
use crate::bounded;
use crate::cache;
use crate::error::{WasmError, cause};
use crate::metadata::Metadata;
use crate::state::HostState;
use crate::trap::{self, Interrupted};

/// How often the epoch advances: the resolution of deadlines and stops,
/// and how long a guest may run before it yields to the async runtime.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Resource limits of every plugin instance.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory per instance, in bytes (default 256 MiB).
    pub memory: usize,
    /// Bytes kept of each of stdout and stderr (default 1 MiB); past it the
    /// output is truncated with a marker line and the step fails.
    pub output: usize,
    /// Instances that may exist at once, across all steps (default 1,000).
    pub instances: u32,
    /// How long `metadata()` may take (default 5 s).
    pub metadata_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory: 256 << 20,
            output: 1 << 20,
            instances: 1000,
            metadata_timeout: Duration::from_secs(5),
        }
    }
}

/// Counters that make the compile cache observable.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Components compiled with Cranelift in this process.
    pub compiled: u64,
    /// Components loaded from the on-disk cache.
    pub disk_hits: u64,
    /// Loads answered by an already loaded component.
    pub memory_hits: u64,
}

/// Which kiln world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// `world action`: a `uses:` step.
    Action,
    /// `world health-check`.
    HealthCheck,
    /// `world deploy-strategy`.
    DeployStrategy,
}

impl World {
    /// The WIT name, e.g. `action`.
    pub fn name(self) -> &'static str {
        match self {
            World::Action => "action",
            World::HealthCheck => "health-check",
            World::DeployStrategy => "deploy-strategy",
        }
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "kiln:plugin/{}@0.1.0", self.name())
    }
}

pub(crate) enum Pre {
    Action(v0_1::action::ActionPre<HostState>),
    Health(v0_1::health::HealthCheckPre<HostState>),
    Strategy(v0_1::strategy::DeployStrategyPre<HostState>),
}

/// A loaded component: compiled, linked, its metadata read. Cheap to
/// instantiate again and again (`InstancePre` + the pooling allocator).
pub struct Plugin {
    /// The reference it was loaded as.
    pub reference: String,
    /// `sha256:…` of its bytes.
    pub digest: String,
    /// The world it implements.
    pub world: World,
    /// What it says about itself.
    pub metadata: Metadata,
    /// Its import names (`wasi:cli/environment@0.2.6`, `kiln:plugin/host@0.1.0`…).
    pub imports: Vec<String>,
    /// Its export names (`metadata`, `run`, …).
    pub exports: Vec<String>,
    pub(crate) pre: Pre,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("reference", &self.reference)
            .field("digest", &self.digest)
            .field("world", &self.world)
            .finish_non_exhaustive()
    }
}

/// The plugin host: one per process, shared by every step.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache_dir: Option<PathBuf>,
    fingerprint: String,
    pub(crate) limits: Limits,
    loaded: Mutex<HashMap<String, Arc<Plugin>>>,
    compiled: AtomicU64,
    disk_hits: AtomicU64,
    memory_hits: AtomicU64,
    ticking: Arc<AtomicBool>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache_dir", &self.cache_dir)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticking.store(false, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Configures wasmtime (Cranelift, pooling allocator sized by
    /// `limits.instances`, epoch interruption) and starts the epoch ticker
    /// thread. `cache_dir` is where compiled code is kept (`None`: memory
    /// only; see [`crate::default_cache_dir`]).
    pub fn new(cache_dir: Option<PathBuf>, limits: Limits) -> Result<Self, WasmError> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(limits.instances)
            .total_core_instances(limits.instances * 8)
            .total_memories(limits.instances)
            .total_tables(limits.instances * 8)
            .total_stacks(limits.instances)
            .max_memory_size(limits.memory)
            .max_memories_per_component(1);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| WasmError::Engine(cause(e)))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| WasmError::Engine(cause(e)))?;
        v0_1::action::Action::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| WasmError::Engine(cause(e)))?;
        let ticking = Arc::new(AtomicBool::new(true));
        start_ticker(&engine, ticking.clone())?;
        Ok(Self {
            fingerprint: cache::fingerprint(&engine),
            engine,
            linker,
            cache_dir,
            limits,
            loaded: Mutex::new(HashMap::new()),
            compiled: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            memory_hits: AtomicU64::new(0),
            ticking,
        })
    }

    /// The compile cache counters so far.
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            compiled: self.compiled.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
        }
    }

    /// The resource limits of every instance.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Loads a component: checks `bytes` against `digest` (`sha256:<hex>`),
    /// compiles it (or loads the cached compiled code), links it and reads
    /// its `metadata()`. A second load of the same digest is a map lookup.
    ///
    /// Compilation is CPU-bound: call this before the run starts.
    pub async fn load(
        &self,
        reference: &str,
        bytes: &[u8],
        digest: &str,
    ) -> Result<Arc<Plugin>, WasmError> {
        let actual = sha256(bytes);
        if actual != digest {
            return Err(WasmError::DigestMismatch {
                plugin: reference.to_owned(),
                expected: digest.to_owned(),
                actual,
            });
        }
        if let Some(plugin) = self.loaded.lock().expect("poisoned").get(digest) {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(plugin.clone());
        }
        check_header(reference, bytes)?;
        let component = self.compile(reference, bytes, digest)?;
        let ty = component.component_type();
        let imports: Vec<String> = ty
            .imports(&self.engine)
            .map(|(n, _)| n.to_owned())
            .collect();
        let exports: Vec<String> = ty
            .exports(&self.engine)
            .map(|(n, _)| n.to_owned())
            .collect();
        let world = world_of(reference, &exports)?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| unknown_import(reference, &imports, e))?;
        let compile_err = |e| WasmError::Compile {
            plugin: reference.to_owned(),
            cause: cause(e),
        };
        let pre = match world {
            World::Action => {
                Pre::Action(v0_1::action::ActionPre::new(instance_pre).map_err(compile_err)?)
            }
            World::HealthCheck => {
                Pre::Health(v0_1::health::HealthCheckPre::new(instance_pre).map_err(compile_err)?)
            }
            World::DeployStrategy => Pre::Strategy(
                v0_1::strategy::DeployStrategyPre::new(instance_pre).map_err(compile_err)?,
            ),
        };
        let metadata = self.read_metadata(reference, &pre).await?;
        let plugin = Arc::new(Plugin {
            reference: reference.to_owned(),
            digest: digest.to_owned(),
            world,
            metadata,
            imports,
            exports,
            pre,
        });
        self.loaded
            .lock()
            .expect("poisoned")
            .insert(digest.to_owned(), plugin.clone());
        Ok(plugin)
    }

    fn compile(&self, reference: &str, bytes: &[u8], digest: &str) -> Result<Component, WasmError> {
        let cached = self
            .cache_dir
            .as_ref()
            .map(|dir| cache::path(dir, digest, &self.fingerprint));
        if let Some(path) = cached.as_ref().filter(|p| p.is_file()) {
            // SAFETY: the file was written by `cache::write` of this kiln
            // build (the name holds the engine fingerprint) into the user's
            // own cache directory; wasmtime checks the header and version.
            match unsafe { Component::deserialize_file(&self.engine, path) } {
                Ok(component) => {
                    self.disk_hits.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(plugin = reference, path = %path.display(), "compile cache hit");
                    return Ok(component);
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable compiled code: {e:#}")
                }
            }
        }
        let started = Instant::now();
        let component = Component::new(&self.engine, bytes).map_err(|e| WasmError::Compile {
            plugin: reference.to_owned(),
            cause: cause(e),
        })?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(plugin = reference, elapsed = ?started.elapsed(), "compiled component with cranelift");
        if let Some(path) = cached {
            let serialized = component.serialize().map_err(|e| WasmError::Compile {
                plugin: reference.to_owned(),
                cause: cause(e),
            })?;
            // A cache that cannot be written only costs time next run.
            if let Err(e) = cache::write(&path, &serialized) {
                tracing::warn!(path = %path.display(), "cannot write the compile cache: {e}");
            }
        }
        Ok(component)
    }

    async fn read_metadata(&self, reference: &str, pre: &Pre) -> Result<Metadata, WasmError> {
        let deadline = Instant::now() + self.limits.metadata_timeout;
        let state = self.bare_state();
        let mut store = self.store(state, Some(deadline), None);
        let late = || {
            format!(
                "`metadata()` did not return within {} s",
                self.limits.metadata_timeout.as_secs()
            )
        };
        let trap = |e: wasmtime::Error| {
            if let Some(bounded::TooBig(what)) = e.downcast_ref::<bounded::TooBig>() {
                return WasmError::Metadata {
                    plugin: reference.to_owned(),
                    message: format!("`metadata()` returned {what}"),
                };
            }
            let message = if e.downcast_ref::<Interrupted>().is_some() {
                late()
            } else {
                trap::explain(&e, self.limits.memory)
            };
            WasmError::Trap {
                plugin: reference.to_owned(),
                doing: "loading its metadata",
                message,
            }
        };
        let instance_pre = match pre {
            Pre::Action(pre) => pre.instance_pre(),
            Pre::Health(pre) => pre.instance_pre(),
            Pre::Strategy(pre) => pre.instance_pre(),
        };
        let call = async {
            let instance = instance_pre.instantiate_async(&mut store).await?;
            // Bounded types rather than the bindings' `call_metadata`: the
            // lengths are checked before anything is copied.
            let metadata =
                instance.get_typed_func::<(), (bounded::RawMetadata,)>(&mut store, "metadata")?;
            let (raw,) = metadata.call_async(&mut store, ()).await?;
            Ok::<_, wasmtime::Error>(Metadata::from(raw))
        };
        // The epoch deadline stops a guest that computes; one waiting in a
        // host call (a sleep) is stopped by dropping the call.
        tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), call)
            .await
            .map_err(|_| WasmError::Trap {
                plugin: reference.to_owned(),
                doing: "loading its metadata",
                message: late(),
            })?
            .map_err(trap)
    }

    /// Store data with nothing granted: no files, network, env or secrets.
    pub(crate) fn bare_state(&self) -> HostState {
        HostState {
            wasi: wasmtime_wasi::WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            limits: self.store_limits(),
            log: None,
            secrets: Vec::new(),
            artifacts: Arc::new(NoArtifactStore) as Arc<dyn ArtifactAccess>,
            job: String::new(),
            workspace: None,
        }
    }

    pub(crate) fn store_limits(&self) -> wasmtime::StoreLimits {
        StoreLimitsBuilder::new()
            .memory_size(self.limits.memory)
            .memories(1)
            .instances(32)
            .tables(32)
            .trap_on_grow_failure(true)
            .build()
    }

    /// A store whose guest is interrupted at `deadline` or when `stop` is
    /// cancelled, and yields to the async runtime every epoch tick. That
    /// stops a guest that computes only: callers also drop the call at the
    /// same moment (see [`stopped`]), for a guest waiting in a host call.
    pub(crate) fn store(
        &self,
        state: HostState,
        deadline: Option<Instant>,
        stop: Option<(CancellationToken, CancellationToken)>,
    ) -> Store<HostState> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            let stopped = stop
                .as_ref()
                .is_some_and(|(stop, kill)| stop.is_cancelled() || kill.is_cancelled());
            let late = deadline.is_some_and(|d| Instant::now() >= d);
            if stopped || late {
                return Err(wasmtime::Error::new(Interrupted));
            }
            Ok(UpdateDeadline::Yield(1))
        });
        store
    }
}

/// Resolves at `deadline` or when `stop` (graceful or hard) is cancelled:
/// the moment to drop a guest call, which is cancel-safe (the store is
/// unusable afterwards). A guest blocked in a host call (a sleep, a socket
/// read) never reaches the epoch callback, so this is what ends it; a
/// guest has no way to act on a graceful stop, so it ends at once too.
pub(crate) async fn stopped(
    deadline: Option<Instant>,
    stop: Option<&(CancellationToken, CancellationToken)>,
) {
    let late = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
            None => std::future::pending().await,
        }
    };
    let cancelled = async {
        match stop {
            Some((stop, kill)) => tokio::select! {
                () = stop.cancelled() => {}
                () = kill.cancelled() => {}
            },
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = late => {}
        () = cancelled => {}
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256:");
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

fn start_ticker(engine: &Engine, ticking: Arc<AtomicBool>) -> Result<(), WasmError> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("kiln-wasm-epoch".into())
        .spawn(move || {
            kiln_engine::process::leave_signals_to_the_engine_thread();
            while ticking.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .map(|_| ())
        .map_err(|e| WasmError::Engine(Box::new(e)))
}

/// A component starts with `\0asm`, a version and layer 1.
fn check_header(reference: &str, bytes: &[u8]) -> Result<(), WasmError> {
    let not = |why: &str| WasmError::NotAComponent {
        plugin: reference.to_owned(),
        why: why.to_owned(),
    };
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(not(
            "it does not start with the WebAssembly magic bytes `\\0asm`",
        ));
    }
    if bytes[6..8] == [0, 0] {
        return Err(not(
            "it is a core WebAssembly module; build it as a component (`cargo build --target wasm32-wasip2`, or `wasm-tools component new`)",
        ));
    }
    Ok(())
}

fn world_of(reference: &str, exports: &[String]) -> Result<World, WasmError> {
    let has = |name: &str| exports.iter().any(|e| e == name);
    if !has("metadata") {
        return Err(WasmError::WrongWorld {
            plugin: reference.to_owned(),
            expected: "kiln:plugin/action@0.1.0".into(),
            found: format!(
                "component without a `metadata` export (exports: {})",
                list(exports)
            ),
        });
    }
    if has("run") {
        Ok(World::Action)
    } else if has("check") {
        Ok(World::HealthCheck)
    } else if has("next") {
        Ok(World::DeployStrategy)
    } else {
        Err(WasmError::WrongWorld {
            plugin: reference.to_owned(),
            expected: "kiln:plugin/action@0.1.0".into(),
            found: format!("component exporting {}", list(exports)),
        })
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "nothing".into();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_import(reference: &str, imports: &[String], err: wasmtime::Error) -> WasmError {
    let provided = |name: &str| {
        name.starts_with("wasi:")
            || name.starts_with("kiln:plugin/host@0.1")
            || name.starts_with("kiln:plugin/artifacts@0.1")
            || name.starts_with("kiln:plugin/types@0.1")
    };
    let text = format!("{err:#}");
    let import = imports
        .iter()
        .find(|i| text.contains(i.as_str()) || !provided(i))
        .cloned()
        .unwrap_or_else(|| text.clone());
    WasmError::UnknownImport {
        plugin: reference.to_owned(),
        import,
        hint: "; plugins may import `kiln:plugin/host`, `kiln:plugin/artifacts` and WASI 0.2"
            .into(),
    }
}
