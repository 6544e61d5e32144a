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
use super::{Compression, Limits, Summary, ZSTD_LEVEL};

/// Read size for file contents.
const READ_BUFFER: usize = 256 * 1024;

/// Packs the tree under `dir` (not `dir` itself) into `out`.
///
/// The same tree always gives the same bytes: entries in byte order of
/// their paths (depth first), mtime 0, uid/gid 0, no user or group names,
/// mode 0755 for directories and files with any execute bit, 0644 for other
/// files. Symlinks are stored as links and must stay inside the tree (the
/// rule extraction enforces, checked here so an upload fails rather than
/// its download). Sockets, fifos and devices are refused, and so is a tree
/// over `limits` (more entries or bytes than [`unpack`](super::unpack)
/// would accept under the same caps): an archive that could never be
/// restored is refused when it is made, not when it is needed. A zstd
/// archive carries zstd's content checksum, so a damaged frame says so.
pub fn pack(
    dir: &Path,
    compression: Compression,
    limits: &Limits,
    out: impl Write,
) -> Result<Summary> {
    with_builder(compression, out, |builder| {
        let mut packer = Packer::new(builder, dir, limits);
        packer.tree_under(Path::new(""))?;
        Ok(packer.summary)
    })
}

/// Packs the files `files` (relative to `root`, `/`-separated, as a glob
/// matched them) into `out`, with their parent directories: the same
/// deterministic format and the same caps as [`pack`], rooted at `root`. A
/// directory among `files` is packed whole.
pub fn pack_files(
    root: &Path,
    files: &[String],
    compression: Compression,
    limits: &Limits,
    out: impl Write,
) -> Result<Summary> {
    with_builder(compression, out, |builder| {
        let mut packer = Packer::new(builder, root, limits);
        packer.selection(files)?;
        Ok(packer.summary)
    })
}

/// The builder every packing writes through: one code path for both
/// compressions (a virtual call per write is nothing next to the I/O).
type DynBuilder<'a> = Builder<&'a mut dyn Write>;

/// Runs `fill` on a tar builder over `out`, compressed as asked, and
/// finishes the stream (end-of-archive blocks, then the zstd frame's end).
fn with_builder(
    compression: Compression,
    mut out: impl Write,
    fill: impl FnOnce(&mut DynBuilder<'_>) -> Result<Summary>,
) -> Result<Summary> {
    let write = |source| Error::Write { source };
    match compression {
        Compression::None => {
            let mut builder = Builder::new(&mut out as &mut dyn Write);
            let summary = fill(&mut builder)?;
            builder.into_inner().map_err(write)?;
            out.flush().map_err(write)?;
            Ok(summary)
        }
        Compression::Zstd => {
            let mut encoder = zstd::Encoder::new(out, ZSTD_LEVEL).map_err(write)?;
            // 4 bytes per archive, so that damage fails as a checksum
            // mismatch at the latest, never as bytes the tar reader takes.
            encoder.include_checksum(true).map_err(write)?;
            let mut builder = Builder::new(&mut encoder as &mut dyn Write);
            let summary = fill(&mut builder)?;
            builder.into_inner().map_err(write)?;
            encoder.finish().map_err(write)?.flush().map_err(write)?;
            Ok(summary)
        }
    }
}

/// One packing: the builder, the tree's root, the caps and the running
/// totals they are checked against.
struct Packer<'b, 'w> {
    builder: &'b mut DynBuilder<'w>,
    root: &'b Path,
    limits: &'b Limits,
    summary: Summary,
}

impl<'b, 'w> Packer<'b, 'w> {
    fn new(builder: &'b mut DynBuilder<'w>, root: &'b Path, limits: &'b Limits) -> Self {
        Self {
            builder,
            root,
            limits,
            summary: Summary::default(),
        }
    }

    /// Counts one more entry of `bytes` bytes of content, refusing it if
    /// the archive would pass a cap.
    fn count(&mut self, bytes: u64) -> Result<()> {
        let entries = self.summary.entries + 1;
        if entries > self.limits.max_entries {
            return Err(Error::PackTooManyEntries {
                path: self.root.to_owned(),
                limit: self.limits.max_entries,
            });
        }
        let total = self.summary.bytes.saturating_add(bytes);
        if total > self.limits.max_bytes {
            return Err(Error::PackTooLarge {
                path: self.root.to_owned(),
                limit: self.limits.max_bytes,
            });
        }
        self.summary.entries = entries;
        self.summary.bytes = total;
        Ok(())
    }

    fn selection(&mut self, files: &[String]) -> Result<()> {
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
        for rel in &entries {
            if dirs.contains(rel) {
                self.count(0)?;
                let mut header = fixed_header();
                header.set_entry_type(EntryType::Directory);
                header.set_mode(0o755);
                self.builder
                    .append_data(&mut header, rel, io::empty())
                    .map_err(|source| Error::Write { source })?;
            } else if self.append(rel)? {
                // A directory named by the selection: all of it.
                self.tree_under(rel)?;
            }
        }
        Ok(())
    }

    /// Everything below `root/top`, depth first with an explicit stack
    /// (deep trees must not exhaust a thread's stack); children are pushed
    /// in reverse to pop in order.
    fn tree_under(&mut self, top: &Path) -> Result<()> {
        let mut stack = children(self.root, top)?;
        stack.reverse();
        while let Some(rel) = stack.pop() {
            if self.append(&rel)? {
                let mut below = children(self.root, &rel)?;
                below.reverse();
                stack.extend(below);
            }
        }
        Ok(())
    }

    /// Appends the entry `root/rel`; returns whether it is a directory
    /// (whose children the caller walks next).
    fn append(&mut self, rel: &Path) -> Result<bool> {
        let full = self.root.join(rel);
        let walk = |source| Error::Walk {
            path: full.clone(),
            source,
        };
        let meta = fs::symlink_metadata(&full).map_err(walk)?;
        let kind = meta.file_type();
        let mut header = fixed_header();
        let is_dir = kind.is_dir();
        let written = if is_dir {
            self.count(0)?;
            header.set_entry_type(EntryType::Directory);
            header.set_mode(0o755);
            self.builder.append_data(&mut header, rel, io::empty())
        } else if kind.is_file() {
            self.count(meta.len())?;
            let executable = meta.permissions().mode() & 0o111 != 0;
            header.set_entry_type(EntryType::Regular);
            header.set_mode(if executable { 0o755 } else { 0o644 });
            header.set_size(meta.len());
            let file = File::open(&full).map_err(walk)?;
            let mut reader = Exact::new(file, meta.len());
            // Large reads: the builder copies through a small stack buffer.
            let buffered = io::BufReader::with_capacity(READ_BUFFER, &mut reader);
            let result = self.builder.append_data(&mut header, rel, buffered);
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
            self.count(0)?;
            header.set_entry_type(EntryType::Symlink);
            header.set_mode(0o777);
            self.builder.append_link(&mut header, rel, &target)
        } else {
            return Err(Error::Unsupported {
                path: full,
                kind: kind_name(&kind),
            });
        };
        written.map_err(|source| Error::Write { source })?;
        Ok(is_dir)
    }
}

fn fixed_header() -> Header {
    let mut header = Header::new_gnu();
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(0);
    header
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
