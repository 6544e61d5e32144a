//! Walking `objects/` and checking every blob against its name.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::Digest;
use super::error::{Error, Result};
use super::ingest::{CHUNK, fill, finish};

/// What [`BlobStore::verify_all`](super::BlobStore::verify_all) found. Every
/// list is sorted. A clean store has all lists empty.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Blobs checked (including corrupt ones).
    pub checked: u64,
    /// Bytes hashed.
    pub bytes: u64,
    /// Blobs whose content does not hash to their name: `(name, actual)`.
    pub corrupt: Vec<(Digest, Digest)>,
    /// Indexed digests with no blob.
    pub missing: Vec<Digest>,
    /// Blobs that no index entry references (safe to collect).
    pub orphaned: Vec<Digest>,
    /// Blobs that could not be read, with the reason.
    pub unreadable: Vec<Unreadable>,
    /// Files under `objects/` whose path is not a blob name.
    pub stray: Vec<PathBuf>,
}

impl VerifyReport {
    /// Whether nothing is wrong (orphans are not wrong, just collectable).
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty()
            && self.missing.is_empty()
            && self.unreadable.is_empty()
            && self.stray.is_empty()
    }
}

/// A blob that could not be read during verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The blob's name.
    pub digest: Digest,
    /// The I/O error, as text (so reports compare and serialize).
    pub reason: String,
}

pub(crate) fn verify_all(objects: &Path, index: &HashSet<Digest>) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let mut seen = HashSet::new();
    let mut buf = vec![0u8; CHUNK];
    walk_all(objects, |found| {
        let (digest, path) = match found {
            Found::Blob(digest, path) => (digest, path),
            Found::Stray(path) => {
                report.stray.push(path.to_owned());
                return Ok(());
            }
        };
        seen.insert(digest);
        report.checked += 1;
        match hash_file(path, &mut buf) {
            Ok((actual, size)) => {
                report.bytes += size;
                if actual != digest {
                    report.corrupt.push((digest, actual));
                }
            }
            Err(e) => report.unreadable.push(Unreadable {
                digest,
                reason: e.to_string(),
            }),
        }
        if !index.contains(&digest) {
            report.orphaned.push(digest);
        }
        Ok(())
    })?;
    report.missing = index.difference(&seen).copied().collect();
    report.missing.sort();
    report.corrupt.sort();
    report.orphaned.sort();
    report.stray.sort();
    Ok(report)
}

pub(crate) fn hash_file(path: &Path, buf: &mut [u8]) -> io::Result<(Digest, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut size = 0;
    loop {
        let n = fill(&mut file, buf)?;
        if n == 0 {
            return Ok((finish(hasher), size));
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
}

/// An entry under `objects/`.
pub(crate) enum Found<'a> {
    Blob(Digest, &'a Path),
    Stray(&'a Path),
}

/// Calls `each` for every blob under `objects/`, in digest order.
pub(crate) fn walk(
    objects: &Path,
    mut each: impl FnMut(Digest, &Path) -> Result<()>,
) -> Result<()> {
    walk_all(objects, |found| match found {
        Found::Blob(digest, path) => each(digest, path),
        Found::Stray(_) => Ok(()),
    })
}

fn walk_all(objects: &Path, mut each: impl FnMut(Found<'_>) -> Result<()>) -> Result<()> {
    for (shard_name, shard) in sorted_entries(objects)? {
        let shard_is_dir = fs::symlink_metadata(&shard).is_ok_and(|m| m.is_dir());
        let shard_name = shard_name.to_str().filter(|_| shard_is_dir);
        let Some(shard_name) = shard_name else {
            each(Found::Stray(&shard))?;
            continue;
        };
        for (name, path) in sorted_entries(&shard)? {
            let is_file = fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
            let digest = name
                .to_str()
                .filter(|_| is_file)
                .and_then(|name| Digest::from_object_name(shard_name, name));
            match digest {
                Some(digest) => each(Found::Blob(digest, &path))?,
                None => each(Found::Stray(&path))?,
            }
        }
    }
    Ok(())
}

fn sorted_entries(dir: &Path) -> Result<Vec<(std::ffi::OsString, PathBuf)>> {
    let access = |source| Error::Access {
        path: dir.to_owned(),
        source,
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(access)? {
        let entry = entry.map_err(access)?;
        entries.push((entry.file_name(), entry.path()));
    }
    entries.sort();
    Ok(entries)
}
