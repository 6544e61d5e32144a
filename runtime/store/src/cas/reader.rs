//! Reading blobs, verified as they are read.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::error::{Error, Result};
use super::ingest::{CHUNK, finish, sync_dir};
use super::{Blob, BlobStore, Digest};

/// A stored blob opened for reading.
///
/// Serves exactly the blob's length, re-hashing as it goes. The read that
/// would hand out the last byte first checks the digest: on a mismatch
/// (or a blob that shrank) it returns an error instead, carrying
/// [`Error::Corrupt`] (take it out with [`Error::from_io`]). So a consumer
/// that reads to the end, or reads exactly [`BlobReader::size`] bytes,
/// never completes with corrupt data. Bytes handed out before the error are
/// unverified: write them somewhere temporary and discard them on error, as
/// [`BlobStore::export`] does.
#[derive(Debug)]
pub struct BlobReader {
    digest: Digest,
    path: PathBuf,
    file: File,
    hasher: Sha256,
    size: u64,
    remaining: u64,
    verified: bool,
    /// What the content hashed to, once it did not match: every later read
    /// fails the same way, so a consumer that drains the reader after an
    /// error of its own still learns the blob is corrupt.
    corrupt: Option<Digest>,
}

impl BlobReader {
    pub(crate) fn open(path: PathBuf, digest: Digest) -> Result<Self> {
        // A symlink under objects/ was not made by us; refuse to follow it.
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .and_then(|file| Ok((file.metadata()?, file)));
        let (meta, file) = match opened {
            Ok(opened) => opened,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotFound { digest });
            }
            Err(source) => {
                return Err(Error::Read {
                    digest,
                    path,
                    source,
                });
            }
        };
        Ok(Self {
            digest,
            path,
            file,
            hasher: Sha256::new(),
            size: meta.len(),
            remaining: meta.len(),
            verified: false,
            corrupt: None,
        })
    }

    /// The blob's name.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The blob's length, as stored.
    pub fn size(&self) -> u64 {
        self.size
    }

    fn check(&mut self) -> io::Result<()> {
        let actual = match self.corrupt {
            Some(actual) => actual,
            None => finish(std::mem::take(&mut self.hasher)),
        };
        if actual != self.digest {
            self.corrupt = Some(actual);
            return Err(Error::Corrupt {
                digest: self.digest,
                actual,
            }
            .into_io());
        }
        self.verified = true;
        Ok(())
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.corrupt.is_some() {
            return self.check().map(|()| 0);
        }
        if self.verified || buf.is_empty() {
            return Ok(0);
        }
        // Never read past the recorded length: what is served is exactly
        // what was hashed.
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = if want == 0 {
            0
        } else {
            loop {
                match self.file.read(&mut buf[..want]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(source) => {
                        return Err(Error::Read {
                            digest: self.digest,
                            path: self.path.clone(),
                            source,
                        }
                        .into_io());
                    }
                }
            }
        };
        self.hasher.update(&buf[..n]);
        self.remaining -= n as u64;
        // End of blob (or it shrank since open): verify before these last
        // bytes count as read.
        if self.remaining == 0 || n == 0 {
            self.check()?;
        }
        Ok(n)
    }
}

pub(crate) fn export(store: &BlobStore, digest: &Digest, dest: &Path) -> Result<Blob> {
    export_reader(store.open_blob(digest)?, dest)
}

/// [`BlobStore::export`] of a blob already opened.
pub fn export_reader(mut reader: BlobReader, dest: &Path) -> Result<Blob> {
    let digest = *reader.digest();
    let dir = match dest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let part = dir.join(format!(".{name}.kiln-part"));
    let write = |path: &Path, source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&part)
        .map_err(|e| write(&part, e))?;
    let result = copy_verified(&mut reader, &mut out, &part);
    let result = result.and_then(|()| out.sync_all().map_err(|e| write(&part, e)));
    let result = result.and_then(|()| fs::rename(&part, dest).map_err(|e| write(dest, e)));
    if let Err(err) = result {
        let _ = fs::remove_file(&part);
        return Err(err);
    }
    sync_dir(dir).map_err(|e| write(dir, e))?;
    Ok(Blob {
        digest,
        size: reader.size(),
    })
}

fn copy_verified(reader: &mut BlobReader, out: &mut File, part: &Path) -> Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) => return Err(into_store_error(e, reader)),
        };
        out.write_all(&buf[..n]).map_err(|source| Error::Write {
            path: part.to_owned(),
            source,
        })?;
    }
}

/// Recovers the typed error a [`BlobReader`] wrapped into an `io::Error`.
fn into_store_error(err: io::Error, reader: &BlobReader) -> Error {
    match err.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(err)) => *err,
        Some(Err(other)) => Error::Read {
            digest: reader.digest,
            path: reader.path.clone(),
            source: io::Error::other(other),
        },
        None => Error::Read {
            digest: reader.digest,
            path: reader.path.clone(),
            source: io::Error::other("read failed"),
        },
    }
}
