//! Compiled code on disk, keyed by (component SHA-256, engine fingerprint),
//! so Cranelift runs once per component per kiln build.
//!
//! Files are written to a temp name and renamed, so a reader never sees a
//! half-written file; an unreadable or incompatible file is recompiled and
//! replaced. The directory is the user's own (`KILN_HOME` or the XDG cache
//! dir): deserializing trusts its contents like the kiln binary itself.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;

/// The cache directory: `$KILN_HOME/cache/compiled`, else
/// `$XDG_CACHE_HOME/kiln/compiled`, else `~/.cache/kiln/compiled`.
pub fn default_dir() -> Option<PathBuf> {
    let env = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(home) = env("KILN_HOME") {
        return Some(home.join("cache").join("compiled"));
    }
    if let Some(xdg) = env("XDG_CACHE_HOME") {
        return Some(xdg.join("kiln").join("compiled"));
    }
    env("HOME").map(|home| home.join(".cache").join("kiln").join("compiled"))
}

/// A hex fingerprint of everything that makes compiled code compatible:
/// wasmtime version, target, and the engine's settings.
pub(crate) fn fingerprint(engine: &Engine) -> String {
    // SipHash with fixed keys: stable for one build of kiln, which is all
    // the cache needs (a new build may recompile once).
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Where the compiled form of `digest` lives.
pub(crate) fn path(dir: &Path, digest: &str, fingerprint: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    dir.join(format!("{hex}-{fingerprint}.cwasm"))
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename).
pub(crate) fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("cwasm"),
        std::process::id()
    ));
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}
