//! Which strategy and health-check components a rollout uses (the
//! adapters over kiln-wasm are kiln-deploy's `components`).
//!
//! `kiln run` loads them with the run's other plugins, resolved through
//! kiln.lock like any `uses:` ([`DeployComponents`], built by
//! `plugins::prepare`); the commands that work on recorded rollouts
//! (`deploy resume|rollback|simulate`) resolve the recorded reference again
//! ([`DeployComponents::standalone`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use kiln_deploy::components::{WasmHealth, WasmStrategy, on_own_thread};
use kiln_deploy::controller::Log;
use kiln_deploy::{HealthCheck, Strategy};
use kiln_wasm::{Limits, Plugin, Runtime, World};

/// The loaded strategy and health-check components of a run, by reference
/// as written.
#[derive(Debug, Default, Clone)]
pub(crate) struct DeployComponents {
    runtime: Option<Arc<Runtime>>,
    plugins: HashMap<String, Arc<Plugin>>,
}

impl DeployComponents {
    /// No components yet, loaded into `runtime`.
    pub(crate) fn new(runtime: Arc<Runtime>) -> Self {
        Self {
            runtime: Some(runtime),
            plugins: HashMap::new(),
        }
    }

    /// Adds a loaded component under its reference.
    pub(crate) fn insert(&mut self, plugin: Arc<Plugin>) {
        self.plugins.insert(plugin.reference.clone(), plugin);
    }

    /// Loads `uses` outside a run, for the commands that act on recorded
    /// rollouts: a bundled name, a local path relative to `base`, or a
    /// remote reference (fetched, or read from the plugin store). With
    /// `pinned` (`sha256:…`), only those bytes are accepted.
    pub(crate) fn standalone(
        uses: &str,
        base: &Path,
        pinned: Option<&str>,
    ) -> Result<Self, String> {
        let reference = kiln_fetch::Reference::parse(uses)
            .map_err(|e| format!("`{uses}` is not a plugin reference: {}", e.problem))?;
        let client = kiln_fetch::Client::new();
        let bundled = crate::command::plugin::bundled();
        let pinned_digest = pinned
            .and_then(|p| p.strip_prefix("sha256:"))
            .and_then(|hex| hex.parse::<kiln_fetch::Digest>().ok());
        let fetched = |c: kiln_fetch::Component| (c.bytes, c.digest);
        let (bytes, digest) = match &reference {
            kiln_fetch::Reference::Local { .. } | kiln_fetch::Reference::Bundled { .. } => {
                kiln_fetch::Resolver::without_store(&client, bundled, base)
                    .fetch(&reference)
                    .map(fetched)
            }
            _ => {
                let store = crate::command::plugin::open_store().map_err(|e| e.to_string())?;
                match pinned_digest {
                    // The bytes the rollout used, without asking the source
                    // (a tag may point elsewhere by now).
                    Some(digest) if store.contains(&digest) => {
                        store.read(&digest).map(|bytes| (Arc::from(bytes), digest))
                    }
                    _ => kiln_fetch::Resolver::new(&store, &client, bundled, base)
                        .fetch(&reference)
                        .map(fetched),
                }
            }
        }
        .map_err(|e| crate::error::chain(&e))?;
        let digest = format!("sha256:{}", digest.to_hex());
        if let Some(expected) = pinned
            && digest != expected
        {
            return Err(format!(
                "`{uses}` is no longer the component the rollout used ({expected}; now {digest})"
            ));
        }
        let runtime = Runtime::new(kiln_wasm::default_cache_dir(), Limits::default())
            .map_err(|e| crate::error::chain(&e))?;
        let plugin = on_own_thread(|| runtime.load(uses, &bytes, &digest))?
            .map_err(|e| crate::error::chain(&e))?;
        let mut loaded = Self::new(Arc::new(runtime));
        loaded.insert(plugin);
        Ok(loaded)
    }

    fn get(&self, uses: &str, world: World) -> Result<(Arc<Runtime>, Arc<Plugin>), String> {
        let (Some(runtime), Some(plugin)) = (&self.runtime, self.plugins.get(uses)) else {
            return Err(format!(
                "`{uses}` was not loaded before the rollout started"
            ));
        };
        if plugin.world != world {
            return Err(format!(
                "`{uses}` is a `{}` component; a `{}` is needed here",
                plugin.world.name(),
                world.name()
            ));
        }
        Ok((runtime.clone(), plugin.clone()))
    }

    /// `sha256:…` of the component loaded for `uses`.
    pub(crate) fn digest(&self, uses: &str) -> Option<String> {
        self.plugins.get(uses).map(|p| p.digest.clone())
    }

    /// The strategy `uses`.
    pub(crate) fn strategy(&self, uses: &str) -> Result<Box<dyn Strategy>, String> {
        let (runtime, plugin) = self.get(uses, World::DeployStrategy)?;
        Ok(Box::new(WasmStrategy::new(runtime, plugin)))
    }

    /// The health check `uses`; what it writes goes to `log`.
    pub(crate) fn health(&self, uses: &str, log: Log) -> Result<Arc<dyn HealthCheck>, String> {
        let (runtime, plugin) = self.get(uses, World::HealthCheck)?;
        Ok(Arc::new(WasmHealth::new(runtime, plugin).with_log(log)))
    }
}
