//! kiln's first-party plugins, embedded: the components of the `plugins/`
//! workspace (built for wasm32-wasip2 by this crate's build script), looked
//! up by the name and major version of a `uses: kiln/<name>@<major>`
//! reference.
//!
//! This crate owns the bytes only; resolving a reference, verifying and
//! compiling the component are the host's (`kiln-wasm`).
#![warn(missing_docs)]

/// The world a bundled component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum World {
    /// `kiln:plugin/action@0.1.0`: a step's `uses:`.
    Action,
    /// `kiln:plugin/health-check@0.1.0`.
    HealthCheck,
    /// `kiln:plugin/deploy-strategy@0.1.0`.
    DeployStrategy,
}

/// One embedded component.
#[derive(Debug)]
pub struct Bundled {
    /// The short name: `render` in `kiln/render@1`.
    pub name: &'static str,
    /// Its semver version, e.g. `1.0.0`.
    pub version: &'static str,
    /// The world it implements.
    pub world: World,
    /// The component's bytes.
    pub bytes: &'static [u8],
}

impl Bundled {
    /// The major version (`1` for `1.0.0`).
    pub fn major(&self) -> u64 {
        self.version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0)
    }
}

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// Every bundled plugin.
pub fn all() -> &'static [Bundled] {
    ALL
}

/// The plugin `kiln/<name>@<major>`, if it is bundled.
pub fn find(name: &str, major: u64) -> Option<&'static Bundled> {
    ALL.iter().find(|b| b.name == name && b.major() == major)
}
