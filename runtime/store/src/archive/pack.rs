//! Packing a directory into a deterministic tar stream.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tar::{Builder, EntryType, Header};

use super::error::{Error, Result};
use super::path::check_link;
use super::{Compression, Summary, ZSTD_LEVEL};

/// Read size for file contents.
const READ_BUFFER: usize = 256 * 1024;

/// Packs the tree under `dir` (not `dir` itself) into `out`.
///
/// The same tree always gives the same bytes: entries in byte order of
/// their paths (depth first), mtime 0, uid/gid 0, no user or group names,
/// mode 0755 for directories and files with any execute bit, 0644 for other
/// files. Symlinks are stored as links and must stay inside the tree (the
/// rule extraction enforces, checked here so an upload fails rather than
/// its download). Sockets, fifos and devices are refused.
pub fn pack(dir: &Path, compression: Compression, out: impl Write) -> Result<Summary> {
    let write = |source| Error::Write { source };
    match compression {
        Compression::None => {
            let mut builder = Builder::new(out);
            let summary = pack_tree(&mut builder, dir)?;
            builder.into_inner().map_err(write)?;
            Ok(summary)
        }
        Compression::Zstd => {
            let encoder = zstd::Encoder::new(out, ZSTD_LEVEL).map_err(write)?;
            let mut builder = Builder::new(encoder);
            let summary = pack_tree(&mut builder, dir)?;
            builder
                .into_inner()
                .map_err(write)?
                .finish()
                .map_err(write)?;
            Ok(summary)
        }
    }
}

fn pack_tree<W: Write>(builder: &mut Builder<W>, root: &Path) -> Result<Summary> {
    pack_tree_under(builder, root, Path::new(""))
}

/// Packs the files `files` (relative to `root`, `/`-separated, as a glob
/// matched them) into `out`, with their parent directories: the same
/// deterministic format as [`pack`], rooted at `root`. A directory among
/// `files` is packed whole.
pub fn pack_files(
    root: &Path,
    files: &[String],
    compression: Compression,
    out: impl Write,
) -> Result<Summary> {
    let write = |source| Error::Write { source };
    match compression {
        Compression::None => {
            let mut builder = Builder::new(out);
            let summary = pack_selection(&mut builder, root, files)?;
            builder.into_inner().map_err(write)?;
            Ok(summary)
        }
        Compression::Zstd => {
            let encoder = zstd::Encoder::new(out, ZSTD_LEVEL).map_err(write)?;
            let mut builder = Builder::new(encoder);
            let summary = pack_selection(&mut builder, root, files)?;
            builder
                .into_inner()
                .map_err(write)?
                .finish()
                .map_err(write)?;
            Ok(summary)
        }
    }
}

fn pack_selection<W: Write>(
    builder: &mut Builder<W>,
    root: &Path,
    files: &[String],
) -> Result<Summary> {
    // Path ordering compares component by component, which is the depth
    // first, byte-ordered walk `pack` produces: parents before children.
    let mut dirs = BTreeSet::new();
    let mut entries = BTreeSet::new();
    for file in files {
        let rel: PathBuf = file
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect();
        for ancestor in rel.ancestors().skip(1) {
            if !ancestor.as_os_str().is_empty() {
                dirs.insert(ancestor.to_path_buf());
            }
        }
        entries.insert(rel);
    }
    entries.extend(dirs.iter().cloned());
    let mut summary = Summary::default();
    for rel in &entries {
        if dirs.contains(rel) {
            let mut header = fixed_header();
            header.set_entry_type(EntryType::Directory);
            header.set_mode(0o755);
            builder
                .append_data(&mut header, rel, io::empty())
                .map_err(|source| Error::Write { source })?;
            summary.entries += 1;
        } else if append(builder, root, rel, &mut summary)? {
            // A directory named by the selection: all of it.
            let sub = pack_tree_under(builder, root, rel)?;
            summary.entries += sub.entries;
            summary.bytes += sub.bytes;
        }
    }
    Ok(summary)
}

/// Everything below `root/top`, depth first with an explicit stack (deep
/// trees must not exhaust a thread's stack); children are pushed in
/// reverse to pop in order.
fn pack_tree_under<W: Write>(builder: &mut Builder<W>, root: &Path, top: &Path) -> Result<Summary> {
    let mut summary = Summary::default();
    let mut stack = children(root, top)?;
    stack.reverse();
    while let Some(rel) = stack.pop() {
        if append(builder, root, &rel, &mut summary)? {
            let mut below = children(root, &rel)?;
            below.reverse();
            stack.extend(below);
        }
    }
    Ok(summary)
}

fn fixed_header() -> Header {
    let mut header = Header::new_gnu();
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(0);
    header
}

/// Appends the entry `root/rel`; returns whether it is a directory (whose
/// children the caller walks next).
fn append<W: Write>(
    builder: &mut Builder<W>,
    root: &Path,
    rel: &Path,
    summary: &mut Summary,
) -> Result<bool> {
    let full = root.join(rel);
    let walk = |source| Error::Walk {
        path: full.clone(),
        source,
    };
    let meta = fs::symlink_metadata(&full).map_err(walk)?;
    let kind = meta.file_type();
    let mut header = fixed_header();
    let is_dir = kind.is_dir();
    let written = if is_dir {
        header.set_entry_type(EntryType::Directory);
        header.set_mode(0o755);
        builder.append_data(&mut header, rel, io::empty())
    } else if kind.is_file() {
        let executable = meta.permissions().mode() & 0o111 != 0;
        header.set_entry_type(EntryType::Regular);
        header.set_mode(if executable { 0o755 } else { 0o644 });
        header.set_size(meta.len());
        summary.bytes += meta.len();
        let file = File::open(&full).map_err(walk)?;
        let mut reader = Exact::new(file, meta.len());
        // Large reads: the builder copies through a small stack buffer.
        let buffered = io::BufReader::with_capacity(READ_BUFFER, &mut reader);
        let result = builder.append_data(&mut header, rel, buffered);
        if reader.changed {
            return Err(Error::Changed { path: full });
        }
        if let Some(source) = reader.error.take() {
            return Err(Error::Walk { path: full, source });
        }
        result
    } else if kind.is_symlink() {
        let target = fs::read_link(&full).map_err(walk)?;
        check_link(rel, &target)?;
        header.set_entry_type(EntryType::Symlink);
        header.set_mode(0o777);
        builder.append_link(&mut header, rel, &target)
    } else {
        return Err(Error::Unsupported {
            path: full,
            kind: kind_name(&kind),
        });
    };
    written.map_err(|source| Error::Write { source })?;
    summary.entries += 1;
    Ok(is_dir)
}

/// The entries of `root/rel` as paths relative to `root`, sorted by bytes.
fn children(root: &Path, rel: &Path) -> Result<Vec<PathBuf>> {
    let dir = root.join(rel);
    let walk = |source| Error::Walk {
        path: dir.clone(),
        source,
    };
    let mut names: Vec<OsString> = Vec::new();
    for entry in fs::read_dir(&dir).map_err(walk)? {
        names.push(entry.map_err(walk)?.file_name());
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names.into_iter().map(|name| rel.join(name)).collect())
}

fn kind_name(kind: &fs::FileType) -> &'static str {
    if kind.is_socket() {
        "socket"
    } else if kind.is_fifo() {
        "fifo"
    } else if kind.is_block_device() {
        "block device"
    } else if kind.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

/// Yields exactly the `len` bytes the header announced. The tar builder
/// pads whatever it copies without checking it against the header, so a
/// file that shrinks or grows mid-pack would silently corrupt the archive;
/// this notices instead. Its own read errors are kept apart from the
/// builder's write errors so each gets the right message.
struct Exact {
    file: File,
    left: u64,
    changed: bool,
    error: Option<io::Error>,
}

impl Exact {
    fn new(file: File, len: u64) -> Self {
        Self {
            file,
            left: len,
            changed: false,
            error: None,
        }
    }

    fn stop(&mut self, changed: bool, error: Option<io::Error>) -> io::Error {
        self.changed = changed;
        self.error = error;
        io::Error::other("packing stopped")
    }
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One probe past the end: a file that grew is a changed file.
            let mut probe = [0u8; 1];
            return match self.file.read(&mut probe) {
                Ok(0) => Ok(0),
                Ok(_) => Err(self.stop(true, None)),
                Err(e) => Err(self.stop(false, Some(e))),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        match self.file.read(&mut buf[..want]) {
            Ok(0) => Err(self.stop(true, None)),
            Ok(n) => {
                self.left -= n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => self.read(buf),
            Err(e) => Err(self.stop(false, Some(e))),
        }
    }
}
