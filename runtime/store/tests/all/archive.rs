//! Deterministic archives and round trips through the blob store.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use kiln_store::archive::{self, Compression, Limits, Summary};
use kiln_store::cas::BlobStore;

use crate::cas::tree;

const LONG: &str = "a-very-long-directory-name-that-goes-on/and-on-past-the-hundred-bytes-of-a-ustar-name-field/file.txt";

/// A small tree with every kind of entry archives carry.
fn make_tree(root: &Path, reversed: bool) {
    let mut steps: Vec<Box<dyn Fn()>> = vec![
        Box::new(|| fs::create_dir_all(root.join("src/bin")).unwrap()),
        Box::new(|| fs::write(root.join("src/lib.rs"), "pub fn x() {}\n").unwrap()),
        Box::new(|| fs::write(root.join("src/bin/run.sh"), "#!/bin/sh\necho hi\n").unwrap()),
        Box::new(|| {
            fs::set_permissions(
                root.join("src/bin/run.sh"),
                fs::Permissions::from_mode(0o700),
            )
            .unwrap()
        }),
        Box::new(|| fs::create_dir_all(root.join("empty")).unwrap()),
        Box::new(|| fs::write(root.join("Zeta.txt"), "upper case sorts first\n").unwrap()),
        Box::new(|| fs::write(root.join("ünïcode.txt"), "bytes order\n").unwrap()),
        Box::new(|| symlink("src/lib.rs", root.join("lib-link")).unwrap()),
        Box::new(|| {
            let path = root.join(LONG);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, vec![b'x'; 70_000]).unwrap();
        }),
    ];
    if reversed {
        // Same tree, built in another order with other permissions: the
        // archive must not notice.
        let empty = steps.remove(4);
        steps.insert(0, empty);
        let zeta = steps.remove(5);
        steps.insert(0, zeta);
        steps.push(Box::new(|| {
            fs::set_permissions(root.join("src/lib.rs"), fs::Permissions::from_mode(0o600)).unwrap()
        }));
    }
    for step in steps {
        step();
    }
}

fn packed(dir: &Path, compression: Compression) -> Vec<u8> {
    let mut out = Vec::new();
    archive::pack(dir, compression, &Limits::default(), &mut out).unwrap();
    out
}

#[test]
fn same_tree_packs_to_identical_bytes() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    make_tree(a.path(), false);
    std::thread::sleep(std::time::Duration::from_millis(20)); // other mtimes
    make_tree(b.path(), true);
    for compression in [Compression::None, Compression::Zstd] {
        let first = packed(a.path(), compression);
        assert_eq!(
            first,
            packed(a.path(), compression),
            "{compression:?} twice"
        );
        assert_eq!(
            first,
            packed(b.path(), compression),
            "{compression:?} other tree"
        );
    }
}

#[test]
fn headers_are_sorted_with_fixed_metadata() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path(), false);
    let bytes = packed(dir.path(), Compression::None);
    let mut ar = tar::Archive::new(&bytes[..]);
    let mut seen = Vec::new();
    for entry in ar.entries().unwrap() {
        let entry = entry.unwrap();
        let h = entry.header();
        assert_eq!(h.mtime().unwrap(), 0);
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        let path = entry.path().unwrap().display().to_string();
        seen.push(format!(
            "{path} {:?} {:o}",
            h.entry_type(),
            h.mode().unwrap()
        ));
    }
    assert_eq!(
        seen,
        [
            "Zeta.txt Regular 644",
            "a-very-long-directory-name-that-goes-on Directory 755",
            "a-very-long-directory-name-that-goes-on/and-on-past-the-hundred-bytes-of-a-ustar-name-field Directory 755",
            &format!("{LONG} Regular 644"),
            "empty Directory 755",
            "lib-link Symlink 777",
            "src Directory 755",
            "src/bin Directory 755",
            "src/bin/run.sh Regular 755",
            "src/lib.rs Regular 644",
            "ünïcode.txt Regular 644",
        ]
    );
}

#[test]
fn round_trip_through_the_blob_store() {
    let src = tempfile::tempdir().unwrap();
    make_tree(src.path(), false);
    let state = tempfile::tempdir().unwrap();
    let store = BlobStore::open(state.path()).unwrap();
    let mut writer = store.writer().unwrap();
    let packed = archive::pack(
        src.path(),
        Compression::Zstd,
        &Limits::default(),
        &mut writer,
    )
    .unwrap();
    assert_eq!(
        packed,
        Summary {
            entries: 11,
            bytes: 70_000 + 14 + 18 + 23 + 12
        }
    );
    let stored = writer.commit().unwrap();
    // Deterministic, so packing again deduplicates.
    let mut again = store.writer().unwrap();
    archive::pack(
        src.path(),
        Compression::Zstd,
        &Limits::default(),
        &mut again,
    )
    .unwrap();
    assert!(!again.commit().unwrap().new);

    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("restored");
    let reader = store.open_blob(&stored.blob.digest).unwrap();
    let unpacked = archive::unpack(reader, Compression::Zstd, &dest, &Limits::default()).unwrap();
    assert_eq!(unpacked, packed);
    assert_eq!(tree(&dest), tree(src.path()));
    assert_eq!(fs::read(dest.join(LONG)).unwrap(), vec![b'x'; 70_000]);
    assert_eq!(
        fs::read_link(dest.join("lib-link")).unwrap(),
        Path::new("src/lib.rs")
    );
    let mode = |p: &str| fs::metadata(dest.join(p)).unwrap().permissions().mode() & 0o111;
    assert_ne!(mode("src/bin/run.sh"), 0);
    assert_eq!(mode("src/lib.rs"), 0);
}

#[test]
fn packing_refuses_links_out_of_the_tree_and_fifos() {
    let dir = tempfile::tempdir().unwrap();
    symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
    let err = archive::pack(
        dir.path(),
        Compression::None,
        &Limits::default(),
        Vec::new(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "symlink `passwd` -> `/etc/passwd` is refused: its target is absolute; use a relative target"
    );

    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let err = archive::pack(
        dir.path(),
        Compression::None,
        &Limits::default(),
        Vec::new(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot pack `{}`: it is a fifo; only regular files, directories and symlinks are archived",
            fifo.display()
        )
    );
}

#[test]
fn corrupt_blob_under_an_archive_is_reported() {
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("f"), vec![7u8; 10_000]).unwrap();
    let state = tempfile::tempdir().unwrap();
    let store = BlobStore::open(state.path()).unwrap();
    let mut writer = store.writer().unwrap();
    archive::pack(
        src.path(),
        Compression::None,
        &Limits::default(),
        &mut writer,
    )
    .unwrap();
    let blob = writer.commit().unwrap().blob;
    let path = store.object_path(&blob.digest);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    bytes[600] ^= 1; // inside the file's data
    fs::write(&path, bytes).unwrap();

    let out = tempfile::tempdir().unwrap();
    let reader = store.open_blob(&blob.digest).unwrap();
    let err =
        archive::unpack(reader, Compression::None, out.path(), &Limits::default()).unwrap_err();
    assert_eq!(err.to_string(), "cannot read the archive");
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(
        source.starts_with(&format!("blob `{}` is corrupt", blob.digest)),
        "{source}"
    );
}

/// Bytes no compressor can shrink, so a flipped byte lands in file data.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn a_corrupt_blob_lands_nothing_through_a_staged_unpack() {
    for compression in [Compression::None, Compression::Zstd] {
        let src = tempfile::tempdir().unwrap();
        fs::write(src.path().join("first"), noise(40_000)).unwrap();
        fs::create_dir(src.path().join("sub")).unwrap();
        fs::write(src.path().join("sub/second"), noise(40_000)).unwrap();
        let state = tempfile::tempdir().unwrap();
        let store = BlobStore::open(state.path()).unwrap();
        let mut writer = store.writer().unwrap();
        archive::pack(src.path(), compression, &Limits::default(), &mut writer).unwrap();
        let blob = writer.commit().unwrap().blob;
        let path = store.object_path(&blob.digest);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let at = bytes.len() / 4; // inside the first file's data
        bytes[at] ^= 1;
        fs::write(&path, bytes).unwrap();
        let actual = store
            .verify_all(&std::collections::HashSet::new())
            .unwrap()
            .corrupt[0]
            .1;

        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("dest");
        fs::create_dir(&dest).unwrap();
        fs::write(dest.join("mine"), "kept").unwrap();
        let reader = store.open_blob(&blob.digest).unwrap();
        let err =
            archive::unpack_staged(reader, compression, &dest, &Limits::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read the archive",
            "{compression:?}"
        );
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert_eq!(
            source,
            format!(
                "blob `{}` is corrupt: its content hashes to `{actual}`; \
                 it was not served, re-upload it or run `kiln artifacts verify`",
                blob.digest
            ),
            "{compression:?}"
        );
        assert_eq!(
            tree(out.path()),
            ["dest/", "dest/mine"],
            "{compression:?}: nothing landed, no staging directory left"
        );
    }
}

#[test]
fn a_staged_unpack_fills_a_new_destination_or_merges_into_one() {
    let src = tempfile::tempdir().unwrap();
    make_tree(src.path(), false);
    let mut bytes = Vec::new();
    archive::pack(
        src.path(),
        Compression::Zstd,
        &Limits::default(),
        &mut bytes,
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();

    let fresh = out.path().join("a/fresh");
    archive::unpack_staged(&bytes[..], Compression::Zstd, &fresh, &Limits::default()).unwrap();
    assert_eq!(tree(&fresh), tree(src.path()));

    // An existing destination keeps what the archive does not name and
    // gets every entry it does, files replaced, directories merged.
    let merged = out.path().join("merged");
    fs::create_dir_all(merged.join("src/bin")).unwrap();
    fs::write(merged.join("src/lib.rs"), "old").unwrap();
    fs::write(merged.join("src/own.rs"), "own").unwrap();
    symlink("own.rs", merged.join("lib-link")).unwrap();
    archive::unpack_staged(&bytes[..], Compression::Zstd, &merged, &Limits::default()).unwrap();
    let mut expected = tree(src.path());
    expected.push("src/own.rs".to_owned());
    expected.sort();
    assert_eq!(tree(&merged), expected);
    assert_eq!(
        fs::read(merged.join("src/lib.rs")).unwrap(),
        fs::read(src.path().join("src/lib.rs")).unwrap()
    );
    assert_eq!(
        fs::read_link(merged.join("lib-link")).unwrap(),
        Path::new("src/lib.rs")
    );
    // Only the destinations beside each other, no staging directories.
    assert_eq!(
        fs::read_dir(out.path()).unwrap().count()
            + fs::read_dir(out.path().join("a")).unwrap().count(),
        3
    );

    // A name the archive needs for a file held by a directory is refused.
    let clash = out.path().join("clash");
    fs::create_dir_all(clash.join("src/lib.rs")).unwrap();
    let err = archive::unpack_staged(&bytes[..], Compression::Zstd, &clash, &Limits::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "archive entry `src/lib.rs` conflicts with an existing directory in the destination"
    );
}
