//! Writing blobs: the streaming put, the push-style writer, and the commit
//! they share.

use std::fs::{self, File, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::mpsc;
use std::thread;

use sha2::{Digest as _, Sha256};

use super::error::{Error, Result};
use super::temp::{TempFile, write_error};
use super::{Blob, BlobStore, Digest, Stored};

/// Bytes per read/hash/write step. Large enough that syscall and channel
/// overhead vanish next to hashing; small enough that the few buffers in
/// flight stay far below the runner's memory budget.
pub(crate) const CHUNK: usize = 256 * 1024;

/// Filled chunks queued for the writer thread. With one being filled and
/// one being written, a put holds at most `QUEUED + 2` chunks: 1 MiB.
const QUEUED: usize = 2;

/// Bytes written between background syncs of a large blob.
const SYNC_EVERY: usize = 32 * 1024 * 1024;

/// Mode of committed blobs: nobody writes a blob in place.
const BLOB_MODE: u32 = 0o444;

pub(crate) fn put_reader(store: &BlobStore, mut source: impl Read) -> Result<Stored> {
    let mut temp = TempFile::create(&store.tmp)?;
    let (digest, size) = copy_hashing(&mut source, &mut temp.file)
        .map_err(|e| e.into_error(&store.tmp, &temp.path))?;
    commit(store, temp, Blob { digest, size })
}

/// Why a copy stopped: the two sides get different errors.
enum CopyError {
    Source(io::Error),
    Sink(io::Error),
}

impl CopyError {
    fn into_error(self, tmp_dir: &Path, temp: &Path) -> Error {
        match self {
            CopyError::Source(source) => Error::Source { source },
            CopyError::Sink(source) => write_error(tmp_dir, temp.to_owned(), source),
        }
    }
}

/// Copies `source` into `file` while hashing it. The first chunk is handled
/// inline so small blobs never pay for a thread; past that, this thread
/// reads and hashes while a scoped thread writes, so the cost of a large put
/// is about max(hash, write) instead of their sum.
fn copy_hashing(source: &mut impl Read, file: &mut File) -> Result<(Digest, u64), CopyError> {
    let mut hasher = Sha256::new();
    let mut first = vec![0u8; CHUNK];
    let n = fill(source, &mut first).map_err(CopyError::Source)?;
    hasher.update(&first[..n]);
    if n < CHUNK {
        file.write_all(&first[..n]).map_err(CopyError::Sink)?;
        return Ok((finish(hasher), n as u64));
    }
    let mut size = n as u64;
    thread::scope(|scope| {
        let (full_tx, full_rx) = mpsc::sync_channel::<(Vec<u8>, usize)>(QUEUED);
        let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
        // Flushing as we go: with gigabytes of RAM the kernel would keep a
        // whole large blob dirty until the commit's fsync, which would then
        // write all of it while nothing else happens. A third thread syncs
        // every `SYNC_EVERY` bytes on a second handle, so the disk writes
        // while this thread hashes and the commit's fsync finds little left.
        let syncer_file = file.try_clone().ok();
        let (tick_tx, tick_rx) = mpsc::channel::<()>();
        if let Some(handle) = syncer_file {
            scope.spawn(move || {
                while tick_rx.recv().is_ok() {
                    while tick_rx.try_recv().is_ok() {} // coalesce
                    // A failure here shows again in the commit's fsync.
                    let _ = handle.sync_data();
                }
            });
        }
        let writer = scope.spawn(move || -> io::Result<()> {
            let mut unsynced = 0;
            for (buf, len) in full_rx {
                file.write_all(&buf[..len])?;
                unsynced += len;
                if unsynced >= SYNC_EVERY {
                    unsynced = 0;
                    let _ = tick_tx.send(());
                }
                // The reader may already have stopped; the buffer is then freed here.
                let _ = free_tx.send(buf);
            }
            Ok(())
        });
        let mut read_result = Ok(());
        let mut pending = Some((first, n));
        let mut allocated = 1;
        while let Some(chunk) = pending.take() {
            if full_tx.send(chunk).is_err() {
                break; // the writer failed; its error is reported below
            }
            let mut buf = match free_rx.try_recv() {
                Ok(buf) => buf,
                Err(_) if allocated < QUEUED + 2 => {
                    allocated += 1;
                    vec![0u8; CHUNK]
                }
                Err(_) => match free_rx.recv() {
                    Ok(buf) => buf,
                    Err(_) => break, // the writer is gone
                },
            };
            match fill(source, &mut buf) {
                Ok(0) => {}
                Ok(len) => {
                    hasher.update(&buf[..len]);
                    size += len as u64;
                    pending = Some((buf, len));
                }
                Err(e) => read_result = Err(e),
            }
        }
        drop(full_tx);
        let write_result = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("blob writer thread panicked")));
        // A failed write explains a stopped read, not the other way round.
        write_result.map_err(CopyError::Sink)?;
        read_result.map_err(CopyError::Source)
    })?;
    Ok((finish(hasher), size))
}

/// Reads until `buf` is full or the source ends; returns the bytes read.
/// Full chunks keep writes large and the thread hand-offs few.
pub(crate) fn fill(source: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

pub(crate) fn finish(hasher: Sha256) -> Digest {
    Digest::from_bytes(hasher.finalize().into())
}

/// Moves a fully written temp file into `objects/`, or drops it when the
/// blob is already there.
fn commit(store: &BlobStore, mut temp: TempFile, blob: Blob) -> Result<Stored> {
    let target = store.object_path(&blob.digest);
    // A stored file of the same size is compared with the new copy, which
    // hashes to the name by construction: equal bytes make it the blob, and
    // nothing is written. Anything else is damage (a flipped byte keeps the
    // size), which this upload repairs by replacing it — so the advice of
    // `Error::Corrupt`, re-upload, works. Comparing reads at memory speed,
    // a fraction of hashing again (docs/decisions.md, "Dedup verifies").
    if fs::symlink_metadata(&target).is_ok_and(|m| m.is_file() && m.len() == blob.size)
        && same_bytes(&temp.path, &target).unwrap_or(false)
    {
        return Ok(Stored { blob, new: false }); // `temp` is removed on drop, never synced
    }
    let write = |path: &Path, source| write_error(&store.tmp, path.to_owned(), source);
    // Mode first, so the sync covers it too.
    temp.file
        .set_permissions(Permissions::from_mode(BLOB_MODE))
        .map_err(|e| write(&temp.path, e))?;
    temp.file.sync_all().map_err(|e| write(&temp.path, e))?;
    let shard = target.parent().unwrap_or(&store.objects);
    ensure_dir(shard, &store.objects).map_err(|e| write(shard, e))?;
    fs::rename(&temp.path, &target).map_err(|e| write(&target, e))?;
    temp.disarm();
    // The rename is durable only once the directory holding the new name is.
    sync_dir(shard).map_err(|e| write(shard, e))?;
    Ok(Stored { blob, new: true })
}

/// Whether the files `a` and `b` hold the same bytes.
pub(crate) fn same_bytes(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut a, mut b) = (File::open(a)?, File::open(b)?);
    let (mut buf_a, mut buf_b) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    loop {
        let n = fill(&mut a, &mut buf_a)?;
        if n != fill(&mut b, &mut buf_b)? || buf_a[..n] != buf_b[..n] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Creates the shard directory if needed, syncing its parent so the new
/// directory survives a crash along with the blob in it.
fn ensure_dir(dir: &Path, parent: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => sync_dir(parent),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A blob being written by a producer that pushes bytes, such as
/// [`archive::pack`](crate::archive::pack). Hashes as it writes, through
/// one 256 KiB buffer.
///
/// `Write` must return `io::Error`; if a write fails, the typed cause (for
/// example [`Error::DiskFull`]) is kept and returned by
/// [`BlobWriter::commit`], so a producer can pass the `io::Error` up and the
/// caller still learns the real reason from `commit`.
#[derive(Debug)]
pub struct BlobWriter {
    store: BlobStore,
    temp: TempFile,
    hasher: Sha256,
    buf: Vec<u8>,
    size: u64,
    failed: Option<Error>,
    /// Bytes written since the last background sync was asked for.
    unsynced: usize,
    /// Started once the blob passes `SYNC_EVERY` bytes (see `copy_hashing`).
    syncer: Option<Syncer>,
}

/// A thread that syncs a temp file whenever it is ticked.
#[derive(Debug)]
struct Syncer {
    tick: mpsc::Sender<()>,
    thread: thread::JoinHandle<()>,
}

impl Syncer {
    fn start(file: &File) -> Option<Self> {
        let handle = file.try_clone().ok()?;
        let (tick, ticks) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("kiln-blob-sync".into())
            .spawn(move || {
                while ticks.recv().is_ok() {
                    while ticks.try_recv().is_ok() {}
                    // A failure here shows again in the commit's fsync.
                    let _ = handle.sync_data();
                }
            })
            .ok()?;
        Some(Self { tick, thread })
    }

    /// Stops the thread once its last sync is done.
    fn stop(self) {
        drop(self.tick);
        let _ = self.thread.join();
    }
}

impl BlobWriter {
    pub(crate) fn new(store: &BlobStore) -> Result<Self> {
        Ok(Self {
            store: store.clone(),
            temp: TempFile::create(&store.tmp)?,
            hasher: Sha256::new(),
            buf: Vec::with_capacity(CHUNK),
            size: 0,
            failed: None,
            unsynced: 0,
            syncer: None,
        })
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The error that stopped the writes, if one did: what a producer's
    /// generic `io::Error` actually was (for example [`Error::DiskFull`]).
    pub fn failure(&self) -> Option<&Error> {
        self.failed.as_ref()
    }

    /// Discards what was written (the temp file is removed, nothing is
    /// committed) and returns the write error that stopped the writes, if
    /// one did: for a producer that failed, to tell a full disk from its
    /// own reasons.
    pub fn abandon(mut self) -> Option<Error> {
        if let Some(syncer) = self.syncer.take() {
            syncer.stop();
        }
        self.failed.take()
    }

    /// Stores what was written. Returns the first write error instead, if
    /// any write failed; either way nothing partial is committed.
    pub fn commit(mut self) -> Result<Stored> {
        // A failed drain records its typed error in `failed`.
        let _ = self.drain();
        if let Some(syncer) = self.syncer.take() {
            syncer.stop();
        }
        if let Some(err) = self.failed.take() {
            return Err(err);
        }
        let blob = Blob {
            digest: finish(self.hasher),
            size: self.size,
        };
        commit(&self.store, self.temp, blob)
    }

    /// Hashes and writes the buffered bytes. After a failure every call
    /// fails again, so a producer that ignores one error still cannot
    /// commit a blob with a hole in it.
    fn drain(&mut self) -> io::Result<()> {
        if let Some(err) = &self.failed {
            return Err(io_view(err));
        }
        self.hasher.update(&self.buf);
        let result = self.temp.file.write_all(&self.buf);
        self.unsynced += self.buf.len();
        self.buf.clear();
        if result.is_ok() && self.unsynced >= SYNC_EVERY {
            self.unsynced = 0;
            if self.syncer.is_none() {
                self.syncer = Syncer::start(&self.temp.file);
            }
            if let Some(syncer) = &self.syncer {
                let _ = syncer.tick.send(());
            }
        }
        if let Err(source) = result {
            let err = write_error(&self.store.tmp, self.temp.path.clone(), source);
            let io = io_view(&err);
            self.failed = Some(err);
            return Err(io);
        }
        Ok(())
    }
}

/// The `io::Error` a failed [`BlobWriter`] write returns: same message, and
/// kind `StorageFull` for a full disk so generic code can tell.
fn io_view(err: &Error) -> io::Error {
    let kind = match err {
        Error::DiskFull { .. } => io::ErrorKind::StorageFull,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, err.to_string())
}

impl Write for BlobWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() == CHUNK {
            self.drain()?;
        }
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.size += n as u64;
        Ok(n)
    }

    /// Buffered bytes are written, not synced: durability is the commit's
    /// job.
    fn flush(&mut self) -> io::Result<()> {
        self.drain()
    }
}
