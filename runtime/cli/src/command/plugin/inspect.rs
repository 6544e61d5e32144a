//! `kiln plugin inspect REF`: what a plugin is, where it came from, and —
//! through the wasm host — its world, metadata, imports, exports and the
//! capabilities it asks for.

use std::path::PathBuf;

use kiln_fetch::{Component, Digest, Lockfile, Reference, Resolver, WasmKind};

use crate::error::CliError;

/// `kiln plugin inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    /// The plugin: `./x.wasm`, `kiln/name@1`, `https://…#sha256=…`, `oci://registry/repo:tag`
    pub reference: String,
    /// Show its pin in the kiln.lock beside this pipeline [default: the pipeline in the current directory, if any]
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// What the wasm host reads out of a component.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostView {
    /// The WIT world it targets (`kiln:plugin/action@0.1.0`).
    pub world: String,
    /// `metadata()`: name, version, description, inputs, outputs, as lines.
    pub metadata: Vec<(String, String)>,
    /// Imported interfaces.
    pub imports: Vec<String>,
    /// Exported interfaces and functions.
    pub exports: Vec<String>,
    /// Capabilities it declares (`network: 127.0.0.1:9000`, `fs: write`).
    pub capabilities: Vec<String>,
}

/// Reads a component the way the host would load it.
pub(crate) trait Inspector {
    /// `Ok(None)` when this build has no wasm host; `Err` when the host
    /// cannot load the component (the message says why).
    /// `reference` names the component in the host's messages.
    fn inspect(
        &self,
        reference: &str,
        bytes: &[u8],
        digest: &Digest,
    ) -> Result<Option<HostView>, String>;
}

/// The wasm host's view: loads the component (through the compile cache)
/// and reads its world, `metadata()`, imports and exports.
struct WasmHost;

impl Inspector for WasmHost {
    fn inspect(
        &self,
        reference: &str,
        bytes: &[u8],
        digest: &Digest,
    ) -> Result<Option<HostView>, String> {
        let runtime =
            kiln_wasm::Runtime::new(kiln_wasm::default_cache_dir(), kiln_wasm::Limits::default())
                .map_err(|e| crate::error::chain(&e))?;
        let async_runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let digest = format!("sha256:{}", digest.to_hex());
        let found = async_runtime
            .block_on(kiln_wasm::inspect(&runtime, reference, bytes, &digest))
            .map_err(|e| crate::error::chain(&e))?;
        let m = &found.metadata;
        let mut metadata = vec![
            ("name".to_owned(), m.name.clone()),
            ("version".to_owned(), m.version.clone()),
            ("about".to_owned(), m.description.clone()),
        ];
        for input in &m.inputs {
            let mut line = format!("{}: {}", input.name, input.description);
            if input.required {
                line.push_str(" (required)");
            }
            if let Some(default) = &input.default {
                line.push_str(&format!(" (default `{}`)", kiln_wasm::printable(default)));
            }
            metadata.push(("input".to_owned(), line));
        }
        for output in &m.outputs {
            metadata.push((
                "output".to_owned(),
                format!("{}: {}", output.name, output.description),
            ));
        }
        let capabilities = m
            .capabilities
            .iter()
            .map(|c| match c {
                kiln_wasm::Capability::Fs { write: true } => "fs: write".to_owned(),
                kiln_wasm::Capability::Fs { write: false } => "fs: read".to_owned(),
                kiln_wasm::Capability::Network(what) => format!("network: {what}"),
                kiln_wasm::Capability::Env(name) => format!("env: {name}"),
                kiln_wasm::Capability::Secret(name) => format!("secrets: {name}"),
            })
            .collect();
        Ok(Some(HostView {
            world: format!("kiln:plugin/{}@0.1.0", found.world.name()),
            metadata,
            imports: found.imports,
            exports: found.exports,
            capabilities,
        }))
    }
}

fn host_inspector() -> &'static dyn Inspector {
    &WasmHost
}

/// Runs `kiln plugin inspect`.
pub(crate) fn run(args: &InspectArgs) -> Result<u8, CliError> {
    let reference = Reference::parse(&args.reference)?;
    let context = super::context(args.file.as_deref())?;
    let store = super::open_store()?;
    let client = kiln_fetch::Client::new();
    let base = super::base_dir(context.as_ref());
    let resolver = Resolver::new(&store, &client, super::bundled(), &base);
    let component = resolver.fetch(&reference)?;
    let installed = store.installed()?.remove(&reference.to_string());
    let pin = match &context {
        Some(located) => {
            let lock = Lockfile::load(&super::pipeline::lock_path(located))?;
            Some((
                lock.get(&reference.to_string()).cloned(),
                lock.path().display().to_string(),
            ))
        }
        None => None,
    };
    print_facts(&component);
    println!(
        "installed   {}",
        match installed {
            Some(entry) if entry.digest == component.digest => "yes".to_owned(),
            Some(entry) => format!(
                "as other content (sha256:{}): reinstall to update",
                entry.digest
            ),
            None => "no".to_owned(),
        }
    );
    match pin {
        Some((Some(pin), lock)) if pin.digest == component.digest => {
            println!("pinned      yes, in {lock}")
        }
        Some((Some(pin), lock)) => println!(
            "pinned      to other content in {lock}: sha256:{}",
            pin.digest
        ),
        Some((None, lock)) => println!("pinned      no ({lock})"),
        None => println!("pinned      no pipeline here"),
    }
    let text = reference.to_string();
    match host_inspector().inspect(&text, &component.bytes, &component.digest) {
        Ok(Some(view)) => print_view(&view),
        Ok(None) => println!(
            "world, metadata, imports, exports and capabilities: not available, this kiln has no wasm host"
        ),
        Err(message) => {
            return Err(CliError::Usage(format!(
                "`{reference}` cannot be loaded: {message}"
            )));
        }
    }
    Ok(0)
}

fn print_facts(component: &Component) {
    let kind = match WasmKind::of(&component.bytes) {
        Some(WasmKind::Component) => "component",
        Some(WasmKind::Module) => {
            "core module (not loadable as a plugin: build a component, e.g. `--target wasm32-wasip2`)"
        }
        _ => "unknown WebAssembly version",
    };
    let origin = &component.origin;
    println!("reference   {}", component.reference);
    println!("digest      sha256:{}", component.digest);
    println!("size        {}", super::size(component.bytes.len() as u64));
    println!("kind        {kind}");
    println!("source      {} ({})", origin.source, origin.location);
    if let Some(manifest) = origin.manifest {
        println!("manifest    sha256:{manifest}");
    }
    if let Some(media_type) = &origin.media_type {
        println!("media type  {media_type}");
    }
    if let Some(version) = &origin.version {
        println!("version     {version}");
    }
}

fn print_view(view: &HostView) {
    println!("world       {}", view.world);
    for (key, value) in &view.metadata {
        println!("{key:<11} {value}");
    }
    let list = |title: &str, items: &[String]| {
        println!("{title}:");
        if items.is_empty() {
            println!("  (none)");
        }
        for item in items {
            println!("  {item}");
        }
    };
    list("capabilities", &view.capabilities);
    list("imports", &view.imports);
    list("exports", &view.exports);
}
