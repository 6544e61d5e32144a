//! Caches: `key` → the paths a job saved, restored by exact key or by the
//! newest entry whose key starts with a restore prefix.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rusqlite::{Connection, TransactionBehavior};

use super::read::reference_and_open;
use super::{Artifacts, Error, Kind, Result, from_ms};
use crate::archive::{self, Compression};
use crate::cas::Digest;
use crate::{RunId, now_ms};

/// A cache entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// Its key.
    pub key: String,
    /// The pipeline that saved it.
    pub pipeline: String,
    /// The run that saved it.
    pub run: RunId,
    /// When it was saved.
    pub created: SystemTime,
    /// When it was last restored.
    pub accessed: SystemTime,
    /// Its paths as written in `cache.paths`, with their blobs.
    pub paths: Vec<(String, Kind, Digest, u64)>,
}

impl CacheEntry {
    /// Total size of its blobs.
    pub fn size(&self) -> u64 {
        self.paths.iter().map(|p| p.3).sum()
    }
}

/// A restored cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheHit {
    /// The key of the entry restored.
    pub key: String,
    /// Whether that was the exact key (no save needed afterwards).
    pub exact: bool,
    /// The restore prefix that matched, for a fallback.
    pub prefix: Option<String>,
    /// Bytes restored.
    pub bytes: u64,
}

/// What a save stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSaved {
    /// Bytes stored (sum of blob sizes).
    pub size: u64,
    /// Paths stored, as written.
    pub paths: Vec<String>,
    /// Paths skipped because they did not exist.
    pub missing: Vec<String>,
}

/// Where a cache path lives: `~/x` under `$HOME`, absolute as is, anything
/// else under the workspace.
pub fn resolve_path(path: &str, workspace: &Path) -> PathBuf {
    if let Some(rest) = path.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_owned()
    } else {
        workspace.join(path)
    }
}

impl Artifacts {
    /// Looks up `key`, then each of `restore_keys` as a prefix (newest
    /// entry first), and restores the first entry found into its paths
    /// (`~/x` under `$HOME`, absolute as is, anything else under the
    /// workspace). `reader` references its blobs until it ends.
    ///
    /// The lookup, the references and the opening of the blobs are one
    /// write transaction: a concurrent `gc` either ran before (the entry is
    /// gone: a clean miss) or runs after (the references keep the blobs).
    pub fn restore_cache(
        &mut self,
        reader: RunId,
        key: &str,
        restore_keys: &[String],
        workspace: &Path,
    ) -> Result<Option<CacheHit>> {
        self.restore_cache_observed(reader, key, restore_keys, workspace, || {})
    }

    /// [`Artifacts::restore_cache`], calling `after_lookup` between the
    /// lookup and the taking of references: where a `gc` would have to
    /// interleave to race it, which the tests use.
    pub(crate) fn restore_cache_observed(
        &mut self,
        reader: RunId,
        key: &str,
        restore_keys: &[String],
        workspace: &Path,
        after_lookup: impl FnOnce(),
    ) -> Result<Option<CacheHit>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = lookup(&tx, key, restore_keys)?;
        after_lookup();
        let Some((entry, prefix)) = found else {
            return Ok(None);
        };
        tx.execute(
            "UPDATE caches SET accessed_ms = ?2 WHERE key = ?1",
            (&entry.key, now_ms()),
        )?;
        let digests: Vec<Digest> = entry.paths.iter().map(|p| p.2).collect();
        let readers = reference_and_open(&tx, &self.blobs, &digests, Some(reader))?;
        tx.commit()?;
        let mut bytes = 0;
        for ((path, kind, _, _), blob) in entry.paths.iter().zip(readers) {
            let dest = resolve_path(path, workspace);
            bytes += self.write_out(*kind, blob, &dest)?;
        }
        Ok(Some(CacheHit {
            exact: entry.key == key,
            key: entry.key,
            prefix,
            bytes,
        }))
    }

    /// Saves `paths` (as written in `cache.paths`) under `key`, unless an
    /// entry with that key exists already (then `None`: caches are
    /// immutable, the first save of a key wins). Missing paths are skipped;
    /// if none exists nothing is saved.
    pub fn save_cache(
        &mut self,
        run: RunId,
        pipeline: &str,
        key: &str,
        paths: &[String],
        workspace: &Path,
    ) -> Result<Option<CacheSaved>> {
        if self.cache_entry(key)?.is_some() {
            return Ok(None);
        }
        let mut stored = Vec::new();
        let mut missing = Vec::new();
        for path in paths {
            let full = resolve_path(path, workspace);
            let meta = match fs::metadata(&full) {
                Ok(meta) => meta,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    missing.push(path.clone());
                    continue;
                }
                Err(source) => return Err(Error::Source { path: full, source }),
            };
            let (kind, blob) = if meta.is_file() {
                (Kind::File, self.put_file(&full)?)
            } else if meta.is_dir() {
                (
                    Kind::Tree,
                    self.pack(|out, limits| archive::pack(&full, Compression::Zstd, limits, out))?,
                )
            } else {
                return Err(Error::NotUploadable { path: full });
            };
            stored.push((path.clone(), kind, blob.blob));
        }
        if stored.is_empty() {
            return Ok(None);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (_, _, blob) in &stored {
            let intact = fs::symlink_metadata(self.blobs.object_path(&blob.digest))
                .is_ok_and(|m| m.is_file() && m.len() == blob.size);
            if !intact {
                return Err(Error::Vanished {
                    digest: blob.digest,
                });
            }
        }
        let now = now_ms();
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO caches (key, pipeline, run, created_ms, accessed_ms)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            (key, pipeline, run, now),
        )?;
        if inserted == 0 {
            return Ok(None); // another job saved the key meanwhile
        }
        for (idx, (path, kind, blob)) in stored.iter().enumerate() {
            tx.execute(
                "INSERT INTO cache_paths (key, idx, path, kind, digest, size)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                (
                    key,
                    idx as i64,
                    path,
                    kind.as_str(),
                    blob.digest.to_hex(),
                    blob.size as i64,
                ),
            )?;
        }
        tx.commit()?;
        Ok(Some(CacheSaved {
            size: stored.iter().map(|s| s.2.size).sum(),
            paths: stored.into_iter().map(|s| s.0).collect(),
            missing,
        }))
    }

    /// The entry with exactly this key.
    pub fn cache_entry(&self, key: &str) -> Result<Option<CacheEntry>> {
        Ok(caches_where(&self.conn, "WHERE key = ?1", [key])?
            .into_iter()
            .next())
    }

    /// Every cache entry, newest first.
    pub fn caches(&self) -> Result<Vec<CacheEntry>> {
        caches_where(&self.conn, "ORDER BY created_ms DESC, key", [])
    }
}

/// The entry with exactly `key`, else the newest whose key starts with one
/// of `restore_keys` (tried in order), with the prefix that matched.
fn lookup(
    conn: &Connection,
    key: &str,
    restore_keys: &[String],
) -> Result<Option<(CacheEntry, Option<String>)>> {
    if let Some(entry) = caches_where(conn, "WHERE key = ?1", [key])?.pop() {
        return Ok(Some((entry, None)));
    }
    for prefix in restore_keys {
        let found = caches_where(
            conn,
            "WHERE substr(key, 1, length(?1)) = ?1 ORDER BY created_ms DESC, key DESC LIMIT 1",
            [prefix],
        )?;
        if let Some(entry) = found.into_iter().next() {
            return Ok(Some((entry, Some(prefix.clone()))));
        }
    }
    Ok(None)
}

fn caches_where(
    conn: &Connection,
    filter: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<CacheEntry>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT key, pipeline, run, created_ms, accessed_ms FROM caches {filter}"
    ))?;
    let mut entries: Vec<CacheEntry> = stmt
        .query_map(params, |r| {
            Ok(CacheEntry {
                key: r.get(0)?,
                pipeline: r.get(1)?,
                run: r.get(2)?,
                created: from_ms(r.get(3)?),
                accessed: from_ms(r.get(4)?),
                paths: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut paths = conn
        .prepare("SELECT path, kind, digest, size FROM cache_paths WHERE key = ?1 ORDER BY idx")?;
    for entry in &mut entries {
        entry.paths = paths
            .query_map([&entry.key], |r| {
                let digest: String = r.get(2)?;
                Ok((
                    r.get::<_, String>(0)?,
                    Kind::parse(&r.get::<_, String>(1)?),
                    digest.parse().unwrap_or(Digest::from_bytes([0; 32])),
                    r.get::<_, i64>(3)? as u64,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(entries)
}
