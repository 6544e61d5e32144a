//! Temp files of in-flight uploads, and the removal of those whose upload
//! died.
//!
//! A live upload holds an exclusive `flock` on its temp file from creation
//! until commit or drop. The lock dies with the process, so "unlocked" means
//! "abandoned": [`remove_stale`] takes the lock before deleting, which makes
//! it safe while other processes are uploading into the same store.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{FlockOperation, flock};

use super::error::{Error, Result};

/// Suffix of temp files, so a stray file someone else put in `tmp/` is
/// recognisably not ours.
const SUFFIX: &str = ".part";

/// A locked temp file in `tmp/`, removed on drop unless committed.
#[derive(Debug)]
pub(crate) struct TempFile {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    armed: bool,
}

impl TempFile {
    /// Creates and locks a new temp file in `dir`.
    pub(crate) fn create(dir: &Path) -> Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        loop {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let name = format!(
                "blob-{}-{}-{nanos:08x}{SUFFIX}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = dir.join(name);
            let file = match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(write_error(dir, path, source)),
            };
            let mut temp = Self {
                path,
                file,
                armed: true,
            };
            // Between create and lock another process's cleanup may have
            // taken the unlocked file for abandoned and unlinked it; then the
            // name no longer leads to our inode and we start over.
            if flock(&temp.file, FlockOperation::NonBlockingLockExclusive).is_ok()
                && temp.still_named()
            {
                return Ok(temp);
            }
            temp.armed = false;
        }
    }

    fn still_named(&self) -> bool {
        match (fs::symlink_metadata(&self.path), self.file.metadata()) {
            (Ok(named), Ok(open)) => named.ino() == open.ino() && named.dev() == open.dev(),
            _ => false,
        }
    }

    /// Called once the file was renamed away: nothing left to remove.
    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: if this fails, the next `open` removes it.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The error for a failed write into the store: disk full is its own case
/// because the user's fix differs.
pub(crate) fn write_error(tmp_dir: &Path, path: PathBuf, source: io::Error) -> Error {
    if super::error::is_disk_full(&source) {
        Error::DiskFull {
            dir: tmp_dir.to_owned(),
            source,
        }
    } else {
        Error::Write { path, source }
    }
}

/// Removes every temp file in `dir` that no live upload holds locked.
pub(crate) fn remove_stale(dir: &Path) -> Result<usize> {
    let access = |path: &Path, source| Error::Access {
        path: path.to_owned(),
        source,
    };
    let mut removed = 0;
    for entry in fs::read_dir(dir).map_err(|e| access(dir, e))? {
        let entry = entry.map_err(|e| access(dir, e))?;
        let path = entry.path();
        if !entry.file_name().to_string_lossy().ends_with(SUFFIX) {
            continue;
        }
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
        {
            Ok(file) => file,
            // Committed or cleaned by its owner in the meantime.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(access(&path, e)),
        };
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            continue; // a live upload
        }
        match fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(access(&path, e)),
        }
    }
    Ok(removed)
}
