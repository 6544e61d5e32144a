//! From a reference to verified component bytes: the one place that knows
//! where each kind of reference is read from, when the store is enough, and
//! how the result is checked against `kiln.lock`.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_store::cas::Digest;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, PinMismatch, Result};
use crate::http::Client;
use crate::lock::{self, Drift, Lockfile, Mode, Pin, Refusal, Verdict};
use crate::reference::{OciSelector, Reference};
use crate::store::{Installed, PluginStore};

/// A first-party plugin shipped with kiln.
#[derive(Debug, Clone)]
pub struct BundledPlugin {
    /// `render`.
    pub name: String,
    /// The exact version (`1.0.3`), recorded in the pin.
    pub version: String,
    /// The component.
    pub bytes: Cow<'static, [u8]>,
}

/// Where bundled plugins come from. The CLI supplies it (kiln-bundled's
/// `find`); any `Fn(&str, u32) -> Option<BundledPlugin>` is one.
pub trait BundledPlugins {
    /// The bundled plugin `name` with major version `major`, if shipped.
    fn find(&self, name: &str, major: u32) -> Option<BundledPlugin>;
}

impl<F: Fn(&str, u32) -> Option<BundledPlugin>> BundledPlugins for F {
    fn find(&self, name: &str, major: u32) -> Option<BundledPlugin> {
        self(name, major)
    }
}

/// What a component's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    /// A WebAssembly component (what plugins must be).
    Component,
    /// A core WebAssembly module (not loadable as a plugin).
    Module,
    /// `\0asm` with an unknown version or layer.
    Unknown,
}

impl WasmKind {
    /// Reads the preamble; `None` if the bytes are not WebAssembly at all.
    pub fn of(bytes: &[u8]) -> Option<Self> {
        let rest = bytes.strip_prefix(b"\0asm")?;
        Some(match rest.get(..4) {
            Some([0x0d, 0x00, 0x01, 0x00]) => WasmKind::Component,
            Some([0x01, 0x00, 0x00, 0x00]) => WasmKind::Module,
            _ => WasmKind::Unknown,
        })
    }
}

/// Where a component came from: the facts kiln knows without loading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `local`, `bundled`, `https` or `oci`.
    pub source: &'static str,
    /// The file, URL or `oci://` reference the bytes were read from.
    pub location: String,
    /// The OCI layer media type.
    pub media_type: Option<String>,
    /// The OCI manifest digest.
    pub manifest: Option<Digest>,
    /// A bundled plugin's exact version.
    pub version: Option<String>,
}

/// A resolved, verified component: what the CLI hands to the wasm host.
#[derive(Debug, Clone)]
pub struct Component {
    /// The reference it was resolved from.
    pub reference: Reference,
    /// SHA-256 of `bytes` (checked).
    pub digest: Digest,
    /// The component.
    pub bytes: Arc<[u8]>,
    /// Where it came from.
    pub origin: Origin,
}

impl Component {
    /// The pin this component gets in `kiln.lock`.
    pub fn pin(&self) -> Pin {
        Pin {
            digest: self.digest,
            manifest: self.origin.manifest,
            version: self.origin.version.clone(),
        }
    }

    fn installed(&self) -> Installed {
        Installed {
            digest: self.digest,
            size: self.bytes.len() as u64,
            source: self.origin.source.to_owned(),
            media_type: self.origin.media_type.clone(),
            manifest: self.origin.manifest,
            version: self.origin.version.clone(),
        }
    }
}

/// What resolving against the lockfile did to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockChange {
    /// Nothing: the pin matched (or was refreshed quietly).
    None,
    /// A new pin was added.
    Pinned,
    /// A followed (local or bundled) reference changed and was re-pinned.
    Repinned {
        /// The digest pinned before.
        old: Digest,
    },
}

/// Resolves references for one workspace.
pub struct Resolver<'a> {
    store: Option<&'a PluginStore>,
    client: &'a Client,
    bundled: &'a dyn BundledPlugins,
    base: PathBuf,
}

impl<'a> Resolver<'a> {
    /// A resolver reading local paths relative to `base` (the pipeline's
    /// workspace), fetching through `client` into `store`.
    pub fn new(
        store: &'a PluginStore,
        client: &'a Client,
        bundled: &'a dyn BundledPlugins,
        base: &Path,
    ) -> Self {
        Self {
            store: Some(store),
            client,
            bundled,
            base: base.to_owned(),
        }
    }

    /// A resolver for pipelines whose references are all local files or
    /// bundled plugins: it never opens (or creates) the user plugin store,
    /// so it works where there is no home directory. A remote reference is
    /// then [`Error::NoHome`].
    pub fn without_store(client: &'a Client, bundled: &'a dyn BundledPlugins, base: &Path) -> Self {
        Self {
            store: None,
            client,
            bundled,
            base: base.to_owned(),
        }
    }

    fn store(&self) -> Result<&'a PluginStore> {
        self.store.ok_or(Error::NoHome)
    }

    /// Resolves `reference` against `lock` under `mode`, verifying every
    /// byte: the result is exactly what the lockfile allows, or an error.
    ///
    /// Contacts the source only when needed: a pinned tag (without
    /// `--locked`) and a digest reference whose blob is stored are read from
    /// the store alone.
    pub fn resolve(
        &self,
        reference: &Reference,
        lock: &mut Lockfile,
        mode: Mode,
    ) -> Result<(Component, LockChange)> {
        let key = reference.to_string();
        let drift = drift_of(reference);
        let pinned = lock.get(&key).cloned();
        if let Some(pin) = &pinned
            && trusts_pin(reference, pin, mode)
            && self.store.is_some_and(|store| store.contains(&pin.digest))
        {
            return Ok((self.stored(reference, pin)?, LockChange::None));
        }
        let component = self.fetch(reference)?;
        let observed = component.pin();
        let change = match lock::decide(&key, drift, pinned.as_ref(), &observed, mode) {
            Ok(Verdict::Unchanged) => LockChange::None,
            Ok(Verdict::Refresh(pin)) => {
                lock.set(&key, pin);
                LockChange::None
            }
            Ok(Verdict::Record(pin)) => {
                lock.set(&key, pin);
                LockChange::Pinned
            }
            Ok(Verdict::Update { old, new }) => {
                lock.set(&key, new);
                LockChange::Repinned { old }
            }
            Err(Refusal::Unpinned) => {
                return Err(Error::Unpinned {
                    reference: key,
                    lock: lock.path().to_owned(),
                });
            }
            Err(Refusal::Mismatch {
                pinned,
                resolved,
                help,
            }) => {
                return Err(Error::PinMismatch(Box::new(PinMismatch {
                    reference: key,
                    lock: lock.path().to_owned(),
                    pinned,
                    resolved,
                    help,
                })));
            }
        };
        if matches!(reference, Reference::Https { .. } | Reference::Oci(_)) {
            self.store()?.record(&key, component.installed())?;
        }
        Ok((component, change))
    }

    /// The component `lock` pins for `reference`, read from the store
    /// alone, never the network: `None` when the reference is not pinned,
    /// the pin is not one [`Resolver::resolve`] would trust without asking
    /// the source, or its blob is not stored intact. For checks that must
    /// work offline (`kiln validate`).
    pub fn pinned_in_store(&self, reference: &Reference, lock: &Lockfile) -> Option<Component> {
        let pin = lock.get(&reference.to_string())?;
        let store = self.store?;
        if !trusts_pin(reference, pin, Mode::Update) || !store.contains(&pin.digest) {
            return None;
        }
        self.stored(reference, pin).ok()
    }

    /// Reads `reference` from its source now, ignoring any lockfile:
    /// checks it is WebAssembly and matches every digest the reference or
    /// the registry names. Remote components are put into the store (not
    /// yet into its index: [`Resolver::install`] and an accepted
    /// [`Resolver::resolve`] do that).
    pub fn fetch(&self, reference: &Reference) -> Result<Component> {
        let component = match reference {
            Reference::Local { path } => {
                let full = self.base.join(path);
                let bytes = std::fs::read(&full).map_err(|source| Error::Local {
                    reference: reference.to_string(),
                    path: full.clone(),
                    source,
                })?;
                self.component(
                    reference,
                    bytes.into(),
                    origin("local", full.display().to_string()),
                )?
            }
            Reference::Bundled { name, major } => {
                let found = self
                    .bundled
                    .find(name, *major)
                    .ok_or_else(|| Error::NotBundled {
                        name: name.clone(),
                        major: *major,
                    })?;
                let mut origin = origin(
                    "bundled",
                    format!("built into kiln ({} {})", found.name, found.version),
                );
                origin.version = Some(found.version);
                self.component(reference, found.bytes.into_owned().into(), origin)?
            }
            Reference::Https { url, digest } => {
                let origin = origin("https", url.clone());
                if let Some(bytes) = self.intact(digest)? {
                    self.component(reference, bytes.into(), origin)?
                } else {
                    let bytes = crate::http::fetch_component(self.client, url)?;
                    let actual = sha256(&bytes);
                    if actual != *digest {
                        return Err(Error::DigestMismatch {
                            reference: reference.to_string(),
                            what: "downloaded component",
                            expected: *digest,
                            actual,
                        });
                    }
                    let component = self.component(reference, bytes.into(), origin)?;
                    self.store()?.put(&component.bytes)?;
                    component
                }
            }
            Reference::Oci(oci) => {
                // A stored layer is not downloaded again, unless it is damaged.
                let stored = std::cell::RefCell::new(None);
                let pulled = crate::oci::pull(self.client, oci, |d| match self.intact(d) {
                    Ok(Some(bytes)) => {
                        *stored.borrow_mut() = Some(bytes);
                        true
                    }
                    _ => false,
                })?;
                let bytes = match pulled.bytes {
                    Some(bytes) => bytes,
                    None => stored.take().expect("`have` kept the stored bytes"),
                };
                let mut origin = origin(
                    "oci",
                    oci.with_selector(OciSelector::Digest(pulled.manifest))
                        .to_string(),
                );
                origin.media_type = Some(pulled.media_type);
                origin.manifest = Some(pulled.manifest);
                let component = self.component(reference, bytes.into(), origin)?;
                self.store()?.put(&component.bytes)?;
                component
            }
        };
        Ok(component)
    }

    /// [`Resolver::fetch`], then the component is stored (local and
    /// bundled ones too) and recorded in the store's index as what
    /// `reference` is installed as (`kiln plugin install`).
    pub fn install(&self, reference: &Reference) -> Result<Component> {
        let component = self.fetch(reference)?;
        self.store()?.put(&component.bytes)?;
        self.store()?
            .record(&reference.to_string(), component.installed())?;
        Ok(component)
    }

    /// The stored blob `digest` if it is present and intact; a damaged one
    /// counts as absent (the caller downloads and so repairs it).
    fn intact(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        let store = self.store()?;
        if !store.contains(digest) {
            return Ok(None);
        }
        match store.read(digest) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(Error::Corrupt { .. } | Error::MissingBlob { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    fn stored(&self, reference: &Reference, pin: &Pin) -> Result<Component> {
        let bytes = self.store()?.read(&pin.digest)?;
        let mut origin = origin(reference.source_kind(), reference.to_string());
        // Only Wasm layers are ever accepted from a registry; no need to
        // read the index for it.
        if let Reference::Oci(_) = reference {
            origin.media_type = Some(crate::oci::WASM_LAYER_MEDIA_TYPE.to_owned());
        }
        origin.manifest = pin.manifest;
        origin.version = pin.version.clone();
        Ok(Component {
            reference: reference.clone(),
            digest: pin.digest,
            bytes: bytes.into(),
            origin,
        })
    }

    fn component(
        &self,
        reference: &Reference,
        bytes: Arc<[u8]>,
        origin: Origin,
    ) -> Result<Component> {
        if WasmKind::of(&bytes).is_none() {
            return Err(Error::NotWasm {
                reference: reference.to_string(),
                start: describe_start(&bytes),
            });
        }
        Ok(Component {
            reference: reference.clone(),
            digest: sha256(&bytes),
            bytes,
            origin,
        })
    }
}

fn origin(source: &'static str, location: String) -> Origin {
    Origin {
        source,
        location,
        media_type: None,
        manifest: None,
        version: None,
    }
}

/// How `reference` may drift from its pin (see [`Drift`]).
pub fn drift_of(reference: &Reference) -> Drift {
    match reference {
        Reference::Local { .. } | Reference::Bundled { .. } => Drift::Follows,
        Reference::Oci(oci) if matches!(oci.selector, OciSelector::Tag(_)) => Drift::Tag,
        Reference::Https { .. } | Reference::Oci(_) => Drift::Fixed,
    }
}

/// Whether the stored blob of `pin` may be used without asking the source.
fn trusts_pin(reference: &Reference, pin: &Pin, mode: Mode) -> bool {
    match reference {
        // Cheap to re-read, and a change must be seen.
        Reference::Local { .. } | Reference::Bundled { .. } => false,
        Reference::Https { digest, .. } => pin.digest == *digest,
        Reference::Oci(oci) => match &oci.selector {
            OciSelector::Digest(manifest) => pin.manifest == Some(*manifest),
            // Tags are resolved once, then locked; `--locked` re-checks them.
            OciSelector::Tag(_) => mode == Mode::Update,
        },
    }
}

fn sha256(bytes: &[u8]) -> Digest {
    Digest::from_bytes(Sha256::digest(bytes).into())
}

/// The first bytes, printable: `` `<html><h` `` or `` `\x1f\x8b…` ``.
fn describe_start(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing (the file is empty)".into();
    }
    let head = &bytes[..bytes.len().min(8)];
    format!("`{}`", head.escape_ascii())
}

#[cfg(test)]
mod tests;
