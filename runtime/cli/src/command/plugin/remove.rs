//! `kiln plugin remove REF`: out of the store, and out of `kiln.lock`.

use std::path::PathBuf;

use kiln_fetch::{Lockfile, Reference};

use crate::error::CliError;

/// `kiln plugin remove`.
#[derive(Debug, clap::Args)]
pub(crate) struct RemoveArgs {
    /// The reference, as installed
    pub reference: String,
    /// Also drop its pin from the kiln.lock beside this pipeline [default: the pipeline in the current directory, if any]
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// Runs `kiln plugin remove`. The blob goes only when no other installed
/// reference uses it.
pub(crate) fn run(args: &RemoveArgs) -> Result<u8, CliError> {
    let reference = Reference::parse(&args.reference)?.to_string();
    let store = super::open_store()?;
    let removed = store.remove(&reference)?;
    let mut unpinned = None;
    if let Some(located) = super::context(args.file.as_deref())? {
        let mut lock = Lockfile::load(&super::pipeline::lock_path(&located))?;
        if lock.remove(&reference).is_some() {
            unpinned = Some(lock.path().display().to_string());
        }
        lock.save()?;
    }
    if removed.is_none() && unpinned.is_none() {
        return Err(CliError::Usage(format!(
            "`{reference}` is not installed (`kiln plugin list` shows what is) and not pinned here"
        )));
    }
    if let Some(entry) = removed {
        println!(
            "removed {reference} (sha256:{}) from the plugin store",
            entry.digest
        );
    }
    if let Some(lock) = unpinned {
        println!("unpinned {reference} in {lock}");
    }
    Ok(0)
}
