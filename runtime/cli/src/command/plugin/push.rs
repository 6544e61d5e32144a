//! `kiln plugin push FILE oci://registry/repo:tag`: publish a component.

use std::path::PathBuf;

use kiln_fetch::{Reference, WasmKind};

use crate::error::CliError;

/// `kiln plugin push`.
#[derive(Debug, clap::Args)]
pub(crate) struct PushArgs {
    /// The component (`.wasm`)
    pub file: PathBuf,
    /// Where to: `oci://registry/repo:tag`
    pub reference: String,
}

/// Runs `kiln plugin push`.
pub(crate) fn run(args: &PushArgs) -> Result<u8, CliError> {
    let Reference::Oci(oci) = Reference::parse(&args.reference)? else {
        return Err(CliError::Usage(format!(
            "`{}` is not an OCI reference: push to `oci://registry/repo:tag`",
            args.reference
        )));
    };
    let bytes = std::fs::read(&args.file).map_err(|source| CliError::Io {
        path: args.file.clone(),
        source,
    })?;
    if WasmKind::of(&bytes).is_none() {
        return Err(CliError::Usage(format!(
            "`{}` is not a WebAssembly file",
            args.file.display()
        )));
    }
    let pushed = kiln_fetch::oci::push(&kiln_fetch::Client::new(), &oci, &bytes)?;
    println!("pushed {} to {oci}", args.file.display());
    println!("  manifest  sha256:{}", pushed.manifest);
    println!("  layer     sha256:{}", pushed.layer);
    println!(
        "  pull it by digest as {}",
        oci.with_selector(kiln_fetch::OciSelector::Digest(pushed.manifest))
    );
    Ok(0)
}
