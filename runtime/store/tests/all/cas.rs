//! The blob store's story: put, dedup, read verified, detect damage, clean up
//! after killed uploads.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kiln_store::cas::{Blob, BlobStore, Digest, Error, Stored, Unreadable};

const HELLO: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

fn digest(hex: &str) -> Digest {
    hex.parse().unwrap()
}

/// Files under `dir`, recursively, as sorted relative paths; directories
/// end in `/`, symlinks in `@` (and are not followed).
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let kind = fs::symlink_metadata(&path).unwrap().file_type();
            if kind.is_symlink() {
                out.push(format!("{rel}@"));
            } else if kind.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &path, out);
            } else {
                out.push(rel);
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn read_all(store: &BlobStore, digest: &Digest) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    store.open_blob(digest).unwrap().read_to_end(&mut out)?;
    Ok(out)
}

/// Overwrites one byte of a stored blob, as disk rot or tampering would.
pub(crate) fn flip_byte(store: &BlobStore, digest: &Digest, at: u64) {
    let path = store.object_path(digest);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    bytes[at as usize] ^= 0x01;
    fs::write(&path, bytes).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
}

#[test]
fn put_stores_read_only_blob_under_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let stored = store.put_reader(&b"hello"[..]).unwrap();
    let blob = Blob {
        digest: digest(HELLO),
        size: 5,
    };
    assert_eq!(stored, Stored { blob, new: true });
    assert_eq!(
        tree(dir.path()),
        [
            "objects/",
            "objects/2c/",
            &format!("objects/2c/{}", &HELLO[2..]),
            "tmp/"
        ]
    );
    let mode = fs::metadata(store.object_path(&blob.digest))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o444);
    assert_eq!(read_all(&store, &blob.digest).unwrap(), b"hello");
    assert_eq!(store.blobs().unwrap(), [blob]);
    assert!(store.contains(&blob.digest));
}

#[test]
fn empty_blob_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let stored = store.put_reader(io::empty()).unwrap();
    assert_eq!(
        stored.blob.digest.to_string(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(read_all(&store, &stored.blob.digest).unwrap(), b"");
}

#[test]
fn a_known_file_is_deduplicated_without_touching_tmp() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let file = dir.path().join("app");
    fs::write(&file, vec![7u8; 600_000]).unwrap();
    let first = store.put_file(&file).unwrap();
    // With `tmp/` replaced by a plain file, any write would fail: the
    // deduplicated put must not need one.
    fs::remove_dir(dir.path().join("tmp")).unwrap();
    fs::write(dir.path().join("tmp"), "").unwrap();
    let again = store.put_file_dedup(&file, |size| size == 600_000).unwrap();
    assert_eq!(
        again,
        Stored {
            blob: first.blob,
            new: false
        }
    );
    // Without the size hint it copies, which now fails: proof the hinted
    // put above wrote nothing.
    let err = store.put_file_dedup(&file, |_| false).unwrap_err();
    assert!(
        matches!(err, kiln_store::cas::Error::Write { .. }),
        "{err:?}"
    );
    // A hinted size whose content is new falls back to the copy.
    fs::write(&file, vec![8u8; 600_000]).unwrap();
    let err = store.put_file_dedup(&file, |_| true).unwrap_err();
    assert!(
        matches!(err, kiln_store::cas::Error::Write { .. }),
        "{err:?}"
    );
}

#[test]
fn second_put_of_same_content_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    // Several chunks, so the threaded path is the one deduplicating.
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let first = store.put_reader(&data[..]).unwrap();
    let path = store.object_path(&first.blob.digest);
    let before = fs::metadata(&path).unwrap();
    let second = store.put_reader(&data[..]).unwrap();
    assert_eq!(
        second,
        Stored {
            blob: first.blob,
            new: false
        }
    );
    let after = fs::metadata(&path).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (after.ino(), after.mtime_nsec()),
        (before.ino(), before.mtime_nsec())
    );
    assert_eq!(tree(&dir.path().join("tmp")), Vec::<String>::new());
}

#[test]
fn writer_produces_the_same_blob_as_put_reader() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let data: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut writer = store.writer().unwrap();
    for piece in data.chunks(1000) {
        writer.write_all(piece).unwrap();
    }
    assert_eq!(writer.len(), 700_000);
    let written = writer.commit().unwrap();
    assert!(written.new);
    assert_eq!(
        store.put_reader(&data[..]).unwrap(),
        Stored {
            blob: written.blob,
            new: false
        }
    );
    assert_eq!(read_all(&store, &written.blob.digest).unwrap(), data);
}

#[test]
fn dropped_writer_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let mut writer = store.writer().unwrap();
    writer.write_all(&[7; 300_000]).unwrap();
    drop(writer);
    assert_eq!(tree(dir.path()), ["objects/", "tmp/"]);
}

#[test]
fn failing_source_commits_nothing() {
    struct Broken(usize);
    impl Read for Broken {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("network reset"));
            }
            let n = buf.len().min(self.0);
            self.0 -= n;
            Ok(n)
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    for fail_after in [10, 3_000_000] {
        let err = store.put_reader(Broken(fail_after)).unwrap_err();
        assert_eq!(err.to_string(), "cannot read the data to store");
        let Error::Source { source } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(source.to_string(), "network reset");
        assert_eq!(tree(dir.path()), ["objects/", "tmp/"]);
    }
}

#[test]
fn flipped_byte_fails_the_read_and_verify_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let data: Vec<u8> = (0..600_000u32).map(|i| (i % 256) as u8).collect();
    let blob = store.put_reader(&data[..]).unwrap().blob;
    flip_byte(&store, &blob.digest, 300_000);

    let err = read_all(&store, &blob.digest).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    let Some(Error::Corrupt { digest, actual }) = Error::from_io(&err) else {
        panic!("{err:?}")
    };
    assert_eq!(*digest, blob.digest);
    assert_eq!(
        err.to_string(),
        format!(
            "blob `{}` is corrupt: its content hashes to `{actual}`; \
             it was not served, re-upload it or run `kiln artifacts verify`",
            blob.digest
        )
    );

    // A reader that trusts the length and never asks for EOF is stopped too.
    let mut exact = vec![0u8; data.len()];
    let err = store
        .open_blob(&blob.digest)
        .unwrap()
        .read_exact(&mut exact)
        .unwrap_err();
    assert!(
        matches!(Error::from_io(&err), Some(Error::Corrupt { .. })),
        "{err:?}"
    );

    let out = dir.path().join("out.bin");
    let err = store.export(&blob.digest, &out).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    assert!(!out.exists());
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        2,
        "no leftover part file"
    );

    let report = store.verify_all(&HashSet::from([blob.digest])).unwrap();
    assert_eq!(report.corrupt, [(blob.digest, *actual)]);
    assert_eq!((report.checked, report.bytes), (1, 600_000));
    assert!(report.missing.is_empty() && report.orphaned.is_empty());
    assert!(!report.is_clean());
}

#[test]
fn truncated_blob_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let blob = store.put_reader(&b"hello"[..]).unwrap().blob;
    let path = store.object_path(&blob.digest);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&path, b"hell").unwrap();
    let err = read_all(&store, &blob.digest).unwrap_err();
    let Some(Error::Corrupt { actual, .. }) = Error::from_io(&err) else {
        panic!("{err:?}")
    };
    // sha256("hell")
    assert_eq!(
        actual.to_string(),
        "0ebdc3317b75839f643387d783535adc360ca01f33c75f7c1e7373adcd675c0b"
    );
    // Re-uploading the good content repairs the damaged blob.
    assert!(store.put_reader(&b"hello"[..]).unwrap().new);
    assert_eq!(read_all(&store, &blob.digest).unwrap(), b"hello");
}

#[test]
fn export_writes_a_verified_copy() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&dir.path().join("state")).unwrap();
    let blob = store.put_reader(&b"hello"[..]).unwrap().blob;
    let out = dir.path().join("hello.txt");
    assert_eq!(store.export(&blob.digest, &out).unwrap(), blob);
    assert_eq!(fs::read(&out).unwrap(), b"hello");
}

#[test]
fn missing_blob_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let err = store.open_blob(&digest(HELLO)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("blob `{HELLO}` is not in the store")
    );
}

#[test]
fn verify_reports_missing_orphaned_and_stray() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let kept = store.put_reader(&b"kept"[..]).unwrap().blob.digest;
    let orphan = store.put_reader(&b"orphan"[..]).unwrap().blob.digest;
    let gone = digest(HELLO);
    fs::write(dir.path().join("objects/README"), "not a blob").unwrap();
    fs::create_dir(dir.path().join("objects/zz")).unwrap();
    fs::write(dir.path().join("objects/zz/x"), "").unwrap();

    let report = store.verify_all(&HashSet::from([kept, gone])).unwrap();
    assert_eq!(report.checked, 2);
    assert_eq!(report.bytes, 10);
    assert_eq!(report.corrupt, []);
    assert_eq!(report.missing, [gone]);
    assert_eq!(report.orphaned, [orphan]);
    assert_eq!(report.unreadable, Vec::<Unreadable>::new());
    assert_eq!(
        report.stray,
        [
            dir.path().join("objects/README"),
            dir.path().join("objects/zz/x")
        ]
    );

    assert!(store.remove(&orphan).unwrap());
    assert!(!store.remove(&orphan).unwrap());
    assert!(!store.contains(&orphan));
}

#[test]
fn open_removes_abandoned_temp_files_but_not_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    // What a SIGKILLed upload leaves: a partial, unlocked temp file.
    let tmp = dir.path().join("tmp");
    fs::write(tmp.join("blob-4242-0-00000000.part"), [1u8; 1000]).unwrap();
    fs::write(tmp.join("someone-elses-file"), "keep").unwrap();
    let mut live = store.writer().unwrap();
    live.write_all(b"in progress").unwrap();
    live.flush().unwrap();

    let reopened = BlobStore::open(dir.path()).unwrap();
    let left = tree(&tmp);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&"someone-elses-file".to_owned()));
    assert!(
        left.iter()
            .any(|f| f.starts_with(&format!("blob-{}-", std::process::id())))
    );
    assert_eq!(reopened.remove_stale_temp().unwrap(), 0);

    let stored = live.commit().unwrap();
    assert_eq!(
        read_all(&reopened, &stored.blob.digest).unwrap(),
        b"in progress"
    );
    assert_eq!(tree(&tmp), ["someone-elses-file"]);
}

#[test]
fn a_put_repairs_a_damaged_blob_of_the_same_size_and_leaves_an_intact_one_be() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&dir.path().join("state")).unwrap();
    let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    let source = dir.path().join("data.bin");
    fs::write(&source, &data).unwrap();
    let blob = store.put_reader(&data[..]).unwrap().blob;
    let path = store.object_path(&blob.digest);
    let inode = || fs::metadata(&path).unwrap().ino();
    let clean = || {
        store
            .verify_all(&HashSet::from([blob.digest]))
            .unwrap()
            .is_clean()
    };

    // Intact: every kind of put deduplicates, the stored file untouched.
    let before = inode();
    let dedup = Stored { blob, new: false };
    assert_eq!(store.put_reader(&data[..]).unwrap(), dedup);
    let mut writer = store.writer().unwrap();
    writer.write_all(&data).unwrap();
    assert_eq!(writer.commit().unwrap(), dedup);
    assert_eq!(store.put_file_dedup(&source, |_| true).unwrap(), dedup);
    assert_eq!(inode(), before);

    // Damaged (same size): each kind of put replaces it with its copy.
    let repaired = Stored { blob, new: true };
    flip_byte(&store, &blob.digest, 300_000);
    assert_eq!(store.put_reader(&data[..]).unwrap(), repaired);
    assert!(clean());
    flip_byte(&store, &blob.digest, 300_000);
    let mut writer = store.writer().unwrap();
    writer.write_all(&data).unwrap();
    assert_eq!(writer.commit().unwrap(), repaired);
    assert!(clean());
    flip_byte(&store, &blob.digest, 300_000);
    assert_eq!(store.put_file_dedup(&source, |_| true).unwrap(), repaired);
    assert!(clean());
    assert_eq!(read_all(&store, &blob.digest).unwrap(), data);
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o444
    );
    assert_eq!(tree(&dir.path().join("state/tmp")), Vec::<String>::new());
}
