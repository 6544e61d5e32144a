//! `kiln plugin verify`: re-hash the whole store.

use crate::error::{CliError, EXIT_FAILED};

/// Runs `kiln plugin verify`: exit 0 when every installed plugin is intact,
/// 1 when a blob is corrupt, missing or unreadable.
pub(crate) fn run() -> Result<u8, CliError> {
    let store = super::open_store()?;
    let report = store.verify()?;
    let blobs = &report.blobs;
    let users = |digest: &kiln_fetch::Digest| {
        let names: Vec<&str> = report
            .broken
            .iter()
            .filter(|(_, d)| d == digest)
            .map(|(r, _)| r.as_str())
            .collect();
        if names.is_empty() {
            String::new()
        } else {
            format!(" (used by {})", names.join(", "))
        }
    };
    for (digest, actual) in &blobs.corrupt {
        println!(
            "corrupt  sha256:{digest}: content hashes to sha256:{actual}{}",
            users(digest)
        );
    }
    for digest in &blobs.missing {
        println!("missing  sha256:{digest}{}", users(digest));
    }
    for unreadable in &blobs.unreadable {
        println!(
            "unreadable  sha256:{}: {}{}",
            unreadable.digest,
            unreadable.reason,
            users(&unreadable.digest)
        );
    }
    for path in &blobs.stray {
        println!("stray file  {}", path.display());
    }
    println!(
        "checked {} plugin blobs ({}) in `{}`",
        blobs.checked,
        super::size(blobs.bytes),
        store.root().display()
    );
    if report.is_clean() {
        println!("all installed plugins are intact");
        Ok(0)
    } else {
        println!("reinstall the damaged plugins with `kiln plugin install REF`");
        Ok(EXIT_FAILED)
    }
}
