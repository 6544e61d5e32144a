//! Extracting an archive into a destination, refusing anything that could
//! land outside it.
//!
//! Two layers. Every file operation goes through a `cap_std::fs::Dir` of the
//! destination, which resolves paths beneath it and fails any resolution that
//! would leave it (absolute paths, `..`, symlinks pointing out) — a guarantee
//! of the kernel interface (`openat2(RESOLVE_BENEATH)` or cap-std's checked
//! walk), not of our string handling. On top, explicit checks give each
//! refusal its own clear error and go further than confinement: no hard
//! links, no devices or fifos, no symlink whose target could resolve
//! outside, and no write through any symlink, even one pointing inside.

use std::cell::Cell;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use tar::{Archive, EntryType};

use super::error::{Error, Result};
use super::path::{check_link, entry_path};
use super::{Compression, Limits, Summary};

/// Bytes of headers, long names and pax records allowed between two
/// entries. The tar reader holds these in memory, so a hostile archive must
/// not choose their size.
pub(crate) const METADATA_CAP: u64 = 1024 * 1024;

/// Largest zstd window accepted (2^23 = 8 MiB); the packer's level 3 uses
/// far less. Bounds the decoder's memory against a crafted frame.
const ZSTD_WINDOW_LOG_MAX: u32 = 23;

const COPY_BUFFER: usize = 256 * 1024;

/// Extracts the archive read from `source` into `dest` (created if missing).
///
/// Entries replace files and symlinks of the same name in `dest`, and
/// never write through a symlink. Extracted files get mode 0755 if the
/// entry has an execute bit, else 0644 (both less the umask); mtimes are
/// the time of extraction. On error, entries extracted so far stay:
/// [`unpack_staged`](super::unpack_staged) lands nothing unless all went
/// well.
pub fn unpack(
    source: impl Read,
    compression: Compression,
    dest: &Path,
    limits: &Limits,
) -> Result<Summary> {
    let read = |source| Error::Read { source };
    let budget = Rc::new(Cell::new(METADATA_CAP));
    match compression {
        Compression::None => unpack_tar(Budgeted::new(source, &budget), &budget, dest, limits),
        Compression::Zstd => {
            let mut decoder = zstd::Decoder::new(source).map_err(read)?;
            decoder.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(read)?;
            unpack_tar(Budgeted::new(decoder, &budget), &budget, dest, limits)
        }
    }
}

fn unpack_tar<R: Read>(
    source: Budgeted<R>,
    budget: &Rc<Cell<u64>>,
    dest: &Path,
    limits: &Limits,
) -> Result<Summary> {
    let mut out = Extractor::open(dest)?;
    let mut summary = Summary::default();
    let mut archive = Archive::new(source);
    let read_error = |source: io::Error| match source
        .get_ref()
        .and_then(|e| e.downcast_ref::<OverBudget>())
    {
        Some(_) => Error::MetadataTooLarge {
            limit: METADATA_CAP,
        },
        None => Error::Read { source },
    };
    let mut entries = archive.entries().map_err(read_error)?;
    for entry in &mut entries {
        let mut entry = entry.map_err(read_error)?;
        // The entry's own data is bounded by `max_bytes` instead.
        budget.set(u64::MAX);
        summary.entries += 1;
        if summary.entries > limits.max_entries {
            return Err(Error::TooManyEntries {
                limit: limits.max_entries,
            });
        }
        let raw = PathBuf::from(OsStr::from_bytes(&entry.path_bytes()));
        let kind = entry.header().entry_type();
        let Some(path) = entry_path(&raw)? else {
            budget.set(METADATA_CAP);
            continue; // the archive's root, `./`: that is `dest`
        };
        match kind {
            EntryType::Directory => out.make_dir(&path)?,
            EntryType::Regular | EntryType::Continuous => {
                let size = entry.size();
                summary.bytes = summary.bytes.saturating_add(size);
                if summary.bytes > limits.max_bytes {
                    return Err(Error::TooLarge {
                        limit: limits.max_bytes,
                    });
                }
                let mode = entry.header().mode().unwrap_or(0o644);
                let executable = mode & 0o111 != 0;
                out.write_file(&path, executable, &mut entry)
                    .map_err(|e| e.or_read(read_error))?;
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default();
                let target = PathBuf::from(OsStr::from_bytes(&target));
                check_link(&path, &target)?;
                out.make_symlink(&path, &target)?;
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().unwrap_or_default();
                return Err(Error::HardLink {
                    path,
                    target: PathBuf::from(OsStr::from_bytes(&target)),
                });
            }
            EntryType::XGlobalHeader => {} // pax defaults; we keep no metadata
            other => {
                return Err(Error::Special {
                    path,
                    kind: kind_name(other),
                });
            }
        }
        budget.set(METADATA_CAP);
    }
    // Read to the end even past the end-of-archive blocks: a blob is
    // verified only when its last byte is read, and a corrupt one must fail
    // the extraction rather than pass because tar stopped early. Trailing
    // bytes count against the metadata budget.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(read_error)?;
    Ok(summary)
}

fn kind_name(kind: EntryType) -> String {
    match kind {
        EntryType::Char => "character device".into(),
        EntryType::Block => "block device".into(),
        EntryType::Fifo => "fifo".into(),
        EntryType::GNUSparse => "sparse file".into(),
        other => format!("{other:?} entry"),
    }
}

/// Writes entries into the destination through its cap-std handle.
pub(super) struct Extractor {
    pub(super) dir: Dir,
    dest: PathBuf,
    /// Directories known to be real (not symlinks), so deep trees do not
    /// re-check every ancestor for every file.
    known_dirs: HashSet<PathBuf>,
    buf: Vec<u8>,
}

/// A failed file write: the archive side or the destination side.
enum WriteError {
    Archive(io::Error),
    Other(Error),
}

impl WriteError {
    fn or_read(self, read_error: impl Fn(io::Error) -> Error) -> Error {
        match self {
            WriteError::Archive(e) => read_error(e),
            WriteError::Other(e) => e,
        }
    }
}

impl From<Error> for WriteError {
    fn from(e: Error) -> Self {
        WriteError::Other(e)
    }
}

impl Extractor {
    /// Opens `dest` (created if missing) for writing entries into.
    pub(super) fn open(dest: &Path) -> Result<Self> {
        let destination = |source| Error::Destination {
            dest: dest.to_owned(),
            path: PathBuf::from("."),
            source,
        };
        std::fs::create_dir_all(dest).map_err(destination)?;
        let dir = Dir::open_ambient_dir(dest, ambient_authority()).map_err(destination)?;
        Ok(Self {
            dir,
            dest: dest.to_owned(),
            known_dirs: HashSet::new(),
            buf: vec![0u8; COPY_BUFFER],
        })
    }

    pub(super) fn destination(&self, path: &Path, source: io::Error) -> Error {
        Error::Destination {
            dest: self.dest.clone(),
            path: path.to_owned(),
            source,
        }
    }

    /// Makes sure every ancestor of `path` is a real directory, creating
    /// missing ones; an ancestor that is a symlink is refused.
    pub(super) fn prepare_parents(&mut self, path: &Path) -> Result<()> {
        let mut ancestors: Vec<&Path> = path
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .collect();
        ancestors.reverse();
        for ancestor in ancestors {
            if !self.known_dirs.contains(ancestor) {
                self.ensure_dir(ancestor, path)?;
            }
        }
        Ok(())
    }

    /// Makes `dir` exist as a real directory (creating it if missing) for
    /// the entry at `entry`: a symlink or file in its place is refused.
    fn ensure_dir(&mut self, dir: &Path, entry: &Path) -> Result<()> {
        match self.dir.symlink_metadata(dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) if meta.is_symlink() => {
                return Err(Error::ThroughSymlink {
                    path: entry.to_owned(),
                    link: dir.to_owned(),
                });
            }
            Ok(_) => {
                return Err(Error::Conflict {
                    path: entry.to_owned(),
                    existing: "file",
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.dir
                    .create_dir(dir)
                    .map_err(|e| self.destination(dir, e))?;
            }
            Err(e) => return Err(self.destination(dir, e)),
        }
        self.known_dirs.insert(dir.to_owned());
        Ok(())
    }

    /// Clears the way for a file or symlink at `path`: an existing file or
    /// symlink there is removed (replacing a link is not writing through
    /// it), an existing directory is a conflict.
    pub(super) fn clear(&mut self, path: &Path) -> Result<()> {
        self.prepare_parents(path)?;
        match self.dir.symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => Err(Error::Conflict {
                path: path.to_owned(),
                existing: "directory",
            }),
            Ok(_) => self
                .dir
                .remove_file(path)
                .map_err(|e| self.destination(path, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.destination(path, e)),
        }
    }

    pub(super) fn make_dir(&mut self, path: &Path) -> Result<()> {
        self.prepare_parents(path)?;
        self.ensure_dir(path, path)
    }

    fn write_file(
        &mut self,
        path: &Path,
        executable: bool,
        data: &mut impl Read,
    ) -> Result<(), WriteError> {
        self.clear(path)?;
        let mut options = OpenOptions::new();
        // create_new: the name was just cleared, so anything there now was
        // put there concurrently; never open it, and never follow a link.
        options
            .write(true)
            .create_new(true)
            .mode(if executable { 0o755 } else { 0o644 });
        let mut file = self
            .dir
            .open_with(path, &options)
            .map_err(|e| self.destination(path, e))?;
        loop {
            let n = match data.read(&mut self.buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(WriteError::Archive(e)),
            };
            if let Err(e) = file.write_all(&self.buf[..n]) {
                return Err(self.destination(path, e).into());
            }
        }
    }

    fn make_symlink(&mut self, path: &Path, target: &Path) -> Result<()> {
        self.clear(path)?;
        self.dir
            .symlink(target, path)
            .map_err(|e| self.destination(path, e))
    }
}

/// Marks the error of a stream that exceeded its metadata budget.
#[derive(Debug)]
struct OverBudget;

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("archive metadata over budget")
    }
}

impl std::error::Error for OverBudget {}

/// Counts the bytes the tar reader pulls and fails once a budget set by the
/// extraction loop runs out: [`METADATA_CAP`] between entries, unlimited
/// while an entry's data is copied.
struct Budgeted<R> {
    inner: R,
    budget: Rc<Cell<u64>>,
}

impl<R> Budgeted<R> {
    fn new(inner: R, budget: &Rc<Cell<u64>>) -> Self {
        Self {
            inner,
            budget: Rc::clone(budget),
        }
    }
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.budget.get();
        if left == 0 {
            return Err(io::Error::other(OverBudget));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.budget.set(left - n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The second layer on its own: even with the path checks bypassed,
    /// the cap-std handle cannot reach outside the destination.
    #[test]
    fn cap_std_confines_writes_the_checks_never_saw() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        std::os::unix::fs::symlink(root.path(), dest.join("up")).unwrap();
        let mut out = Extractor {
            dir: Dir::open_ambient_dir(&dest, ambient_authority()).unwrap(),
            dest: dest.clone(),
            known_dirs: HashSet::from([PathBuf::from("up")]),
            buf: vec![0; 16],
        };
        for (path, failed_at) in [("../escaped", ".."), ("up/escaped", "up/escaped")] {
            let err = match out.write_file(Path::new(path), false, &mut &b"x"[..]) {
                Err(WriteError::Other(err)) => err,
                Err(WriteError::Archive(e)) => panic!("{e}"),
                Ok(()) => panic!("{path} was written"),
            };
            let Error::Destination {
                path: at, source, ..
            } = &err
            else {
                panic!("{err:?}")
            };
            assert_eq!(at, Path::new(failed_at));
            assert_eq!(source.to_string(), "a path led outside of the filesystem");
        }
        assert!(!root.path().join("escaped").exists());
    }
}
