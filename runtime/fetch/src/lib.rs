//! Plugin references, the content-addressed user plugin store, `kiln.lock`,
//! and fetching components over HTTPS and from OCI registries.
//!
//! The CLI composes it: parse each `uses:` string into a [`Reference`],
//! [`Resolver::resolve`] it against the pipeline's [`Lockfile`] (which
//! reads local files, asks the [`BundledPlugins`] the CLI supplies, or
//! downloads into the [`PluginStore`]), then hands the verified
//! [`Component`] (bytes + SHA-256) to the wasm host. Every byte that comes
//! out of here matches the digest that names it; a mismatch is an error,
//! never a component.
//!
//! This crate owns no wasmtime and prints nothing. Network access is
//! blocking (ureq) and happens before a run starts.
//!
//! ```no_run
//! # fn main() -> Result<(), kiln_fetch::Error> {
//! use kiln_fetch::{Client, Lockfile, Mode, PluginStore, Reference, Resolver};
//! let store = PluginStore::open_default()?;
//! let client = Client::new();
//! let no_bundled = |_: &str, _: u32| None;
//! let resolver = Resolver::new(&store, &client, &no_bundled, std::path::Path::new("."));
//! let mut lock = Lockfile::load(std::path::Path::new("kiln.lock"))?;
//! let reference = Reference::parse("oci://127.0.0.1:5000/acme/notify:1")?;
//! let (component, _change) = resolver.resolve(&reference, &mut lock, Mode::Update)?;
//! lock.save()?;
//! println!("{} is sha256:{}", reference, component.digest);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod digest_text;
mod error;
pub mod home;
mod http;
pub mod lock;
pub mod oci;
mod reference;
mod resolve;
mod store;

pub use error::{Error, PinMismatch, ReferenceError, Result};
pub use http::{Client, MAX_COMPONENT};
pub use kiln_store::cas::Digest;
pub use lock::{Lockfile, Mode, Pin};
pub use reference::{OciReference, OciSelector, Reference};
pub use resolve::{
    BundledPlugin, BundledPlugins, Component, LockChange, Origin, Resolver, WasmKind, drift_of,
};
pub use store::{Installed, PluginStore, StoreReport};
