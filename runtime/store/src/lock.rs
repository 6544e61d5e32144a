//! Liveness of a run, proven by an exclusive `flock` on `runs/<id>.lock`.
//!
//! A pid file would lie after pid reuse; a lock held by the kernel on behalf
//! of an open file description disappears exactly when the owning process
//! dies, however it dies (SIGKILL included). The file is opened close-on-exec
//! so step processes never inherit, and thereby extend, the lock.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};
use rustix::io::Errno;

use crate::error::{Result, StoreError};

/// Held for as long as a run is live; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct RunLock {
    path: PathBuf,
    // Never read: holding the open file is what holds the lock.
    _file: File,
}

/// The outcome of probing another run's lock.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// A live process holds the lock.
    Held,
    /// Nobody holds it (or the file is gone): the run's process is dead.
    Dead,
}

impl RunLock {
    /// Creates and locks `path`, failing if someone else holds it.
    pub(crate) fn acquire(path: PathBuf) -> Result<Self> {
        let file = open(&path)?;
        flock(&file, FlockOperation::NonBlockingLockExclusive).map_err(|errno| io(&path, errno))?;
        Ok(Self { path, _file: file })
    }

    /// Removes the lock file and releases the lock (the run finished cleanly).
    pub(crate) fn release(self) {
        // Unlink first: a prober that opens the path afterwards finds nothing,
        // which reads as "dead", and its conditional update then sees that
        // the run is no longer `running`.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Tries to take the lock at `path` without waiting.
pub(crate) fn probe(path: &Path) -> Result<Probe> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Probe::Dead),
        Err(source) => {
            return Err(StoreError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        // Dropping `file` releases our probe lock at once.
        Ok(()) => Ok(Probe::Dead),
        Err(Errno::WOULDBLOCK) => Ok(Probe::Held),
        Err(errno) => Err(io(path, errno)),
    }
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })
}

fn io(path: &Path, errno: Errno) -> StoreError {
    StoreError::Io {
        path: path.to_owned(),
        source: errno.into(),
    }
}
