//! Scratch directories: private host directories mounted at `/kiln` that
//! hold step scripts (which may contain secrets) and `$KILN_OUTPUT` files.
//!
//! Each is named after the kiln process that made it
//! (`kiln-docker-<pid>-<random>`): a kiln killed with SIGKILL cannot remove
//! its own, and [`sweep_scratch`] removes those whose process is gone.

use std::path::{Path, PathBuf};

use crate::error::{DockerError, Result};

const PREFIX: &str = "kiln-docker-";

/// A scratch directory, removed when dropped. The outer directory is
/// kiln's alone (0700); the inner one is writable by any container user.
pub(crate) struct Scratch {
    _outer: tempfile::TempDir,
    pub inner: PathBuf,
}

impl Scratch {
    pub(crate) fn new() -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let root = root();
        let io = |source| DockerError::Io {
            action: "create a scratch directory in",
            path: root.clone(),
            source,
        };
        let outer = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", std::process::id()))
            .tempdir_in(&root)
            .map_err(io)?;
        let inner = outer.path().join("k");
        std::fs::create_dir(&inner).map_err(io)?;
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o777)).map_err(io)?;
        Ok(Self {
            _outer: outer,
            inner,
        })
    }
}

/// Where scratch directories go. Scripts may hold secrets: memory-backed
/// storage when there is some.
fn root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if rustix::fs::access(shm, rustix::fs::Access::WRITE_OK).is_ok() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Removes the scratch directories of kiln processes that no longer exist
/// (killed before they could clean up); returns how many. Directories of
/// live processes, of other users, or not named by kiln are left alone.
pub fn sweep_scratch() -> usize {
    let mut removed = 0;
    let mut roots = vec![root(), std::env::temp_dir()];
    roots.dedup();
    for root in roots {
        let Ok(entries) = std::fs::read_dir(&root) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(PREFIX))
                .and_then(|rest| rest.split_once('-'))
                .and_then(|(pid, _)| pid.parse::<i32>().ok())
            else {
                continue;
            };
            if is_alive(pid) || !owned_by_us(&entry.path()) {
                continue;
            }
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::debug!(path = %entry.path().display(), error = %e, "cannot remove a scratch directory")
                }
            }
        }
    }
    removed
}

/// Whether a process `pid` exists (signal 0; EPERM means it does, as
/// another user's).
fn is_alive(pid: i32) -> bool {
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        return true;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

fn owned_by_us(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.is_dir() && m.uid() == rustix::process::geteuid().as_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_scratch_of_a_dead_process_is_swept() {
        let mine = Scratch::new().expect("scratch");
        let outer = mine.inner.parent().expect("outer").to_owned();
        // A pid that cannot exist (above the kernel's pid_max limit).
        let dead = root().join(format!("{PREFIX}2147483646-test{}", std::process::id()));
        std::fs::create_dir_all(dead.join("k")).expect("dead scratch");
        sweep_scratch();
        assert!(!dead.exists(), "the dead process's scratch is removed");
        assert!(outer.exists(), "a live process's scratch stays");
    }
}
