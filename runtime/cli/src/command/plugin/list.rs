//! `kiln plugin list`: what the user plugin store holds.

use crate::error::CliError;

/// Runs `kiln plugin list`.
pub(crate) fn run() -> Result<u8, CliError> {
    let store = super::open_store()?;
    let installed = store.installed()?;
    if installed.is_empty() {
        println!("no plugins installed in `{}`", store.root().display());
        return Ok(0);
    }
    let width = installed
        .keys()
        .map(|r| r.chars().count())
        .max()
        .unwrap_or(0)
        .max(9);
    println!(
        "{:<width$}  {:<19}  {:>9}  SOURCE",
        "REFERENCE", "DIGEST", "SIZE"
    );
    for (reference, entry) in &installed {
        let hex = entry.digest.to_hex();
        println!(
            "{reference:<width$}  sha256:{}  {:>9}  {}",
            &hex[..12],
            super::size(entry.size),
            entry.source
        );
    }
    Ok(0)
}
