//! The user plugin store: components content-addressed by SHA-256 (the
//! same blob store as `.kiln/objects`, [`kiln_store::cas`]), plus an index
//! of which reference was installed as which digest.
//!
//! Layout under the store directory (see [`crate::home::plugin_dir`]):
//!
//! ```text
//! objects/ab/cdef…   component bytes, read-only, named by their SHA-256
//! tmp/               in-flight writes (temp → fsync → rename)
//! index.json         reference → digest, size, source, media type
//! index.lock         held while the index is rewritten
//! ```
//!
//! Every read re-hashes: a blob whose content no longer matches its name is
//! an error naming the blob ([`Error::Corrupt`]), never served.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use kiln_store::cas::{BlobStore, Digest, VerifyReport};
use rustix::fs::{FlockOperation, flock};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::lock::write_atomic;

const INDEX_FILE: &str = "index.json";
const INDEX_LOCK: &str = "index.lock";

/// What the index knows about one installed reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Installed {
    /// SHA-256 of the component.
    #[serde(with = "crate::digest_text")]
    pub digest: Digest,
    /// Its length in bytes.
    pub size: u64,
    /// `local`, `bundled`, `https` or `oci`.
    pub source: String,
    /// The OCI layer media type (`application/wasm`), when fetched from a registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The OCI manifest digest, when fetched from a registry.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::digest_text::option"
    )]
    pub manifest: Option<Digest>,
    /// The version of a bundled plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexFile {
    version: u32,
    #[serde(default)]
    plugins: BTreeMap<String, Installed>,
}

/// What [`PluginStore::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreReport {
    /// The blob store's own findings (corrupt, missing, orphaned, …),
    /// checked against the digests the index references.
    pub blobs: VerifyReport,
    /// Index entries whose blob is missing or corrupt: `(reference, digest)`.
    pub broken: Vec<(String, Digest)>,
}

impl StoreReport {
    /// Whether every indexed plugin is present and intact.
    pub fn is_clean(&self) -> bool {
        self.blobs.is_clean() && self.broken.is_empty()
    }
}

/// An open plugin store.
#[derive(Debug, Clone)]
pub struct PluginStore {
    root: PathBuf,
    blobs: BlobStore,
}

impl PluginStore {
    /// Opens (creating) the store at `root`.
    pub fn open(root: &Path) -> Result<Self> {
        let blobs = BlobStore::open(root).map_err(Error::from_store)?;
        Ok(Self {
            root: root.to_owned(),
            blobs,
        })
    }

    /// Opens the store at its default place ([`crate::home::plugin_dir`],
    /// from the process environment).
    pub fn open_default() -> Result<Self> {
        let root = crate::home::plugin_dir(|name| std::env::var_os(name)).ok_or(Error::NoHome)?;
        Self::open(&root)
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether a blob with this digest is stored (content not checked).
    pub fn contains(&self, digest: &Digest) -> bool {
        self.blobs.contains(digest)
    }

    /// Stores `bytes` (deduplicated) and returns their digest. A stored
    /// blob of the same name that is damaged is replaced, so reinstalling
    /// repairs the store (the blob store's own dedup trusts a same-size
    /// file).
    pub fn put(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::from_bytes(Sha256::digest(bytes).into());
        if self.contains(&digest) {
            match self.read(&digest) {
                Ok(_) => return Ok(digest),
                Err(Error::Corrupt { .. }) => {
                    self.blobs.remove(&digest).map_err(Error::from_store)?;
                }
                Err(other) => return Err(other),
            }
        }
        let stored = self.blobs.put_reader(bytes).map_err(Error::from_store)?;
        Ok(stored.blob.digest)
    }

    /// Reads the blob `digest`, verified: corrupt content is
    /// [`Error::Corrupt`], an absent blob [`Error::MissingBlob`].
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut reader = self.blobs.open_blob(digest).map_err(|e| match e {
            kiln_store::cas::Error::NotFound { digest } => Error::MissingBlob {
                digest,
                store: self.root.clone(),
            },
            other => Error::from_store(other),
        })?;
        let mut bytes = Vec::with_capacity(usize::try_from(reader.size()).unwrap_or(0));
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| match kiln_store::cas::Error::from_io(&e) {
                Some(kiln_store::cas::Error::Corrupt { digest, actual }) => Error::Corrupt {
                    digest: *digest,
                    actual: *actual,
                },
                _ => Error::Io {
                    path: self.blobs.object_path(digest),
                    source: e,
                },
            })?;
        Ok(bytes)
    }

    /// Every installed reference, sorted.
    pub fn installed(&self) -> Result<BTreeMap<String, Installed>> {
        Ok(self.read_index()?.plugins)
    }

    /// Records that `reference` is installed as `entry` (replacing an
    /// older entry). The index is rewritten under a lock, atomically.
    pub fn record(&self, reference: &str, entry: Installed) -> Result<()> {
        self.edit_index(|index| {
            index.plugins.insert(reference.to_owned(), entry);
        })
    }

    /// Removes `reference` from the index, and its blob when no other
    /// entry uses it. Returns the entry, if there was one.
    pub fn remove(&self, reference: &str) -> Result<Option<Installed>> {
        let mut removed = None;
        self.edit_index(|index| removed = index.plugins.remove(reference))?;
        if let Some(entry) = &removed {
            let still_used = self
                .installed()?
                .values()
                .any(|other| other.digest == entry.digest);
            if !still_used {
                self.blobs
                    .remove(&entry.digest)
                    .map_err(Error::from_store)?;
            }
        }
        Ok(removed)
    }

    /// Re-hashes every blob and checks every index entry has an intact
    /// blob. Reads the whole store.
    pub fn verify(&self) -> Result<StoreReport> {
        let installed = self.installed()?;
        let wanted: HashSet<Digest> = installed.values().map(|e| e.digest).collect();
        let blobs = self.blobs.verify_all(&wanted).map_err(Error::from_store)?;
        let bad: HashSet<Digest> = blobs
            .missing
            .iter()
            .copied()
            .chain(blobs.corrupt.iter().map(|(d, _)| *d))
            .chain(blobs.unreadable.iter().map(|u| u.digest))
            .collect();
        let broken = installed
            .into_iter()
            .filter(|(_, e)| bad.contains(&e.digest))
            .map(|(r, e)| (r, e.digest))
            .collect();
        Ok(StoreReport { blobs, broken })
    }

    fn index_path(&self) -> PathBuf {
        self.root.join(INDEX_FILE)
    }

    fn read_index(&self) -> Result<IndexFile> {
        let path = self.index_path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(IndexFile {
                    version: 1,
                    ..IndexFile::default()
                });
            }
            Err(source) => return Err(Error::Io { path, source }),
        };
        let index: IndexFile = serde_json::from_str(&text).map_err(|e| Error::BadFile {
            path: path.clone(),
            problem: e.to_string(),
            then: " (installed plugins are then reinstalled on first use)",
        })?;
        if index.version != 1 {
            return Err(Error::BadFile {
                path,
                problem: format!("format version {} is not 1", index.version),
                then: " (installed plugins are then reinstalled on first use)",
            });
        }
        Ok(index)
    }

    /// Read-modify-write of the index, serialised between processes.
    fn edit_index(&self, edit: impl FnOnce(&mut IndexFile)) -> Result<()> {
        let lock_path = self.root.join(INDEX_LOCK);
        let io = |source| Error::Io {
            path: lock_path.clone(),
            source,
        };
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io)?;
        flock(&lock, FlockOperation::LockExclusive).map_err(|e| io(e.into()))?;
        let mut index = self.read_index()?;
        edit(&mut index);
        let mut text = serde_json::to_string_pretty(&index).expect("index serializes");
        text.push('\n');
        write_atomic(&self.index_path(), text.as_bytes())
        // The lock is released when `lock` drops.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(digest: Digest, size: u64) -> Installed {
        Installed {
            digest,
            size,
            source: "oci".into(),
            media_type: Some("application/wasm".into()),
            manifest: None,
            version: None,
        }
    }

    #[test]
    fn put_read_record_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = PluginStore::open(dir.path()).unwrap();
        let digest = store.put(b"\0asm\x0d\0\x01\0").unwrap();
        assert_eq!(store.read(&digest).unwrap(), b"\0asm\x0d\0\x01\0");
        store.record("oci://r/a:1", entry(digest, 8)).unwrap();
        store.record("oci://r/a:2", entry(digest, 8)).unwrap();
        assert_eq!(
            store.installed().unwrap().keys().collect::<Vec<_>>(),
            ["oci://r/a:1", "oci://r/a:2"]
        );
        assert!(store.remove("oci://r/a:1").unwrap().is_some());
        assert!(store.contains(&digest), "still used by a:2");
        assert!(store.remove("oci://r/a:2").unwrap().is_some());
        assert!(!store.contains(&digest), "last user gone, blob removed");
        assert_eq!(store.remove("oci://r/a:2").unwrap(), None);
        assert!(store.verify().unwrap().is_clean());
    }

    #[test]
    fn a_corrupt_blob_is_never_served_and_verify_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = PluginStore::open(dir.path()).unwrap();
        let digest = store.put(b"\0asm\x01\0\0\0").unwrap();
        store.record("./a.wasm", entry(digest, 8)).unwrap();
        let path = dir
            .path()
            .join("objects")
            .join(&digest.to_hex()[..2])
            .join(&digest.to_hex()[2..]);
        let mut perms = fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        fs::set_permissions(&path, perms).unwrap();
        fs::write(&path, b"\0asm\x01\0\0X").unwrap();
        let actual = Digest::from_bytes(sha(b"\0asm\x01\0\0X"));
        let err = store.read(&digest).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "plugin blob `sha256:{digest}` in the store is corrupt (its content hashes to `sha256:{actual}`); \
                 it was not run: reinstall it with `kiln plugin install`, and `kiln plugin verify` lists every damaged blob"
            )
        );
        let report = store.verify().unwrap();
        assert_eq!(report.blobs.corrupt, vec![(digest, actual)]);
        assert_eq!(report.broken, vec![("./a.wasm".to_owned(), digest)]);
        // Putting the right bytes again repairs the blob.
        assert_eq!(store.put(b"\0asm\x01\0\0\0").unwrap(), digest);
        assert_eq!(store.read(&digest).unwrap(), b"\0asm\x01\0\0\0");
        assert!(store.verify().unwrap().is_clean());
        fs::remove_file(&path).unwrap();
        let report = store.verify().unwrap();
        assert_eq!(report.blobs.missing, vec![digest]);
        assert_eq!(
            store.read(&digest).unwrap_err().to_string(),
            format!(
                "plugin blob `sha256:{digest}` is not in the store at `{}`",
                dir.path().display()
            )
        );
    }

    #[test]
    fn a_damaged_index_says_how_to_recover() {
        let dir = tempfile::tempdir().unwrap();
        let store = PluginStore::open(dir.path()).unwrap();
        fs::write(dir.path().join("index.json"), "{").unwrap();
        assert_eq!(
            store.installed().unwrap_err().to_string(),
            format!(
                "cannot read `{}`: EOF while parsing an object at line 1 column 1; fix it or delete it \
                 (installed plugins are then reinstalled on first use)",
                dir.path().join("index.json").display()
            )
        );
    }

    fn sha(bytes: &[u8]) -> [u8; 32] {
        use sha2::Digest as _;
        sha2::Sha256::digest(bytes).into()
    }
}
