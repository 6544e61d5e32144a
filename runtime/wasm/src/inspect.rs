//! `kiln plugin inspect`: what a component is, needs and offers.

use crate::error::WasmError;
use crate::metadata::Metadata;
use crate::runtime::{Runtime, World};

/// Everything `kiln plugin inspect` prints about a component.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The world it implements.
    pub world: World,
    /// `sha256:…` of its bytes.
    pub digest: String,
    /// Its `metadata()`.
    pub metadata: Metadata,
    /// Import names (interfaces it needs from the host).
    pub imports: Vec<String>,
    /// Export names.
    pub exports: Vec<String>,
}

/// Loads a component (through the compile cache, so inspecting and then
/// running compiles once) and describes it. `digest` is `sha256:<hex>` of
/// `bytes`.
pub async fn inspect(
    runtime: &Runtime,
    reference: &str,
    bytes: &[u8],
    digest: &str,
) -> Result<Inspection, WasmError> {
    let plugin = runtime.load(reference, bytes, digest).await?;
    Ok(Inspection {
        world: plugin.world,
        digest: plugin.digest.clone(),
        metadata: plugin.metadata.clone(),
        imports: plugin.imports.clone(),
        exports: plugin.exports.clone(),
    })
}
