//! Extraction through a staging directory: nothing reaches the destination
//! unless the whole archive was read without error.
//!
//! A blob is verified only once its last byte is read, so extracting it
//! straight into the destination would land the files of a corrupt blob
//! before the corruption shows. Here the archive is extracted into a fresh
//! directory beside the destination (same file system, so moving is a
//! rename), and its entries are moved into the destination only once the
//! source was read to its end.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use super::error::{Error, Result};
use super::unpack::{Extractor, unpack};
use super::{Compression, Limits, Summary};

/// Extracts the archive read from `source` into `dest` like
/// [`unpack`](super::unpack), with the same refusals, but lands nothing in
/// `dest` unless all of `source` was read without error.
///
/// The entries go to a hidden directory beside `dest`
/// (`.<name>.kiln-part-…`, removed afterwards, also on error; inside `dest`
/// where its parent cannot be written) and are then
/// moved into place, replacing files and symlinks of the same name. On an
/// error, `source` is first read to its end: a source that checks itself
/// only there (a [`BlobReader`](crate::cas::BlobReader)) then reports its
/// damage, as [`Error::Read`], instead of whatever a damaged archive looked
/// like to the tar or zstd reader. A failure while moving (a name taken by a
/// directory, a full disk) can leave part of the entries moved; each of
/// those was fully read and verified.
pub fn unpack_staged(
    mut source: impl Read,
    compression: Compression,
    dest: &Path,
    limits: &Limits,
) -> Result<Summary> {
    let stage = Stage::beside(dest)?;
    let summary = match unpack(&mut source, compression, &stage.path, limits) {
        Ok(summary) => summary,
        Err(err) => {
            if let Err(source) = io::copy(&mut source, &mut io::sink()) {
                return Err(Error::Read { source });
            }
            return Err(err);
        }
    };
    stage.install(dest)?;
    Ok(summary)
}

/// A staging directory, removed on drop unless it was renamed into place.
struct Stage {
    path: PathBuf,
    armed: bool,
}

impl Stage {
    /// Creates a fresh, hidden directory beside `dest`; inside it if `dest`
    /// has no parent (`/`) or its parent is not writable (a workspace in a
    /// directory kiln may not write to).
    fn beside(dest: &Path) -> Result<Self> {
        let failed = |path: &Path, source| Error::Destination {
            dest: dest.to_owned(),
            path: path.to_owned(),
            source,
        };
        // `.` and `..` have no name of their own to hide a sibling under.
        let named = match dest.file_name() {
            Some(_) => dest.to_owned(),
            None => fs::canonicalize(dest).unwrap_or_else(|_| dest.to_owned()),
        };
        let (dir, name) = match (named.parent(), named.file_name()) {
            (Some(parent), Some(name)) => (
                if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                },
                name.to_string_lossy().into_owned(),
            ),
            _ => (named.as_path(), String::new()),
        };
        let beside = fs::create_dir_all(dir)
            .map_err(|e| (dir.to_owned(), e))
            .and_then(|()| Self::create_in(dir, &name));
        match beside {
            Ok(stage) => Ok(stage),
            Err(_) if dest.is_dir() => Self::create_in(dest, "").map_err(|(p, e)| failed(&p, e)),
            Err((path, e)) => Err(failed(&path, e)),
        }
    }

    fn create_in(dir: &Path, name: &str) -> Result<Self, (PathBuf, io::Error)> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let hidden = if name.is_empty() {
            String::new()
        } else {
            format!(".{name}")
        };
        loop {
            let path = dir.join(format!(
                "{hidden}.kiln-part-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(Self { path, armed: true }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err((path, e)),
            }
        }
    }

    /// Moves the staged entries into `dest`: the whole directory when
    /// `dest` does not exist yet, else entry by entry.
    fn install(mut self, dest: &Path) -> Result<()> {
        if fs::symlink_metadata(dest).is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
            && fs::rename(&self.path, dest).is_ok()
        {
            self.armed = false;
            return Ok(());
        }
        let mut out = Extractor::open(dest)?;
        let staged = Dir::open_ambient_dir(&self.path, ambient_authority()).map_err(|e| {
            Error::Destination {
                dest: dest.to_owned(),
                path: self.path.clone(),
                source: e,
            }
        })?;
        merge(&staged, &mut out)
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: a leftover is a hidden directory of verified or
            // partial files beside the destination, never inside it.
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Moves every entry of `staged` into `out`, with the rules of extraction:
/// a directory merges into an existing one, a file or symlink replaces a
/// file or symlink, a directory in the way of a file is a conflict, and
/// nothing is written through a symlink of the destination.
fn merge(staged: &Dir, out: &mut Extractor) -> Result<()> {
    let mut stack = vec![PathBuf::new()];
    while let Some(dir) = stack.pop() {
        let listed = if dir.as_os_str().is_empty() {
            staged.entries()
        } else {
            staged.read_dir(&dir)
        };
        let listed = listed.map_err(|e| out.destination(&dir, e))?;
        for entry in listed {
            let entry = entry.map_err(|e| out.destination(&dir, e))?;
            let path = dir.join(entry.file_name());
            let kind = entry.file_type().map_err(|e| out.destination(&path, e))?;
            if kind.is_dir() {
                out.prepare_parents(&path)?;
                let vacant = out
                    .dir
                    .symlink_metadata(&path)
                    .is_err_and(|e| e.kind() == io::ErrorKind::NotFound);
                // A directory the destination lacks moves in one rename.
                if !(vacant && staged.rename(&path, &out.dir, &path).is_ok()) {
                    out.make_dir(&path)?;
                    stack.push(path);
                }
            } else {
                out.clear(&path)?;
                move_leaf(staged, out, &path, kind.is_symlink())?;
            }
        }
    }
    Ok(())
}

/// Moves a file or symlink; copies it when a rename cannot (the
/// destination is another file system, such as a volume mounted there).
fn move_leaf(staged: &Dir, out: &mut Extractor, path: &Path, symlink: bool) -> Result<()> {
    match staged.rename(path, &out.dir, path) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {}
        Err(e) => return Err(out.destination(path, e)),
    }
    let copied = if symlink {
        staged
            .read_link(path)
            .and_then(|target| out.dir.symlink(target, path))
    } else {
        staged.copy(path, &out.dir, path).map(drop)
    };
    copied.map_err(|e| out.destination(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fallback for a destination whose parent kiln may not write to
    /// (root, which runs the tests, could write anywhere): a stage inside
    /// the destination merges into it and leaves nothing behind.
    #[test]
    fn a_stage_inside_the_destination_merges_and_leaves_nothing() {
        let dest = tempfile::tempdir().unwrap();
        fs::write(dest.path().join("old"), "old").unwrap();
        fs::write(dest.path().join("mine"), "mine").unwrap();
        let stage = Stage::create_in(dest.path(), "").unwrap();
        assert!(
            stage
                .path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".kiln-part-")
        );
        fs::create_dir(stage.path.join("sub")).unwrap();
        fs::write(stage.path.join("sub/new"), "new").unwrap();
        fs::write(stage.path.join("old"), "replaced").unwrap();
        stage.install(dest.path()).unwrap();
        let mut names: Vec<String> = fs::read_dir(dest.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["mine", "old", "sub"]);
        assert_eq!(
            fs::read_to_string(dest.path().join("old")).unwrap(),
            "replaced"
        );
        assert_eq!(
            fs::read_to_string(dest.path().join("sub/new")).unwrap(),
            "new"
        );
    }
}
