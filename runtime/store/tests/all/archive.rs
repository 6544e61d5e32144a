//! Deterministic archives, round trips through the blob store, and hostile
//! archives crafted header by header.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use kiln_store::archive::{self, Compression, Error, Limits, LinkReason, Summary};
use kiln_store::cas::BlobStore;
use tar::{Builder, EntryType, Header};

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
    archive::pack(dir, compression, &mut out).unwrap();
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
    let packed = archive::pack(src.path(), Compression::Zstd, &mut writer).unwrap();
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
    archive::pack(src.path(), Compression::Zstd, &mut again).unwrap();
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
    let err = archive::pack(dir.path(), Compression::None, Vec::new()).unwrap_err();
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
    let err = archive::pack(dir.path(), Compression::None, Vec::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot pack `{}`: it is a fifo; only regular files, directories and symlinks are archived",
            fifo.display()
        )
    );
}

/// An archive written header by header, with names the `tar` crate's safe
/// setters would refuse.
struct Crafted(Builder<Vec<u8>>);

impl Crafted {
    fn new() -> Self {
        Self(Builder::new(Vec::new()))
    }

    fn entry(mut self, kind: EntryType, path: &str, link: &str, data: &[u8]) -> Self {
        let mut header = Header::new_gnu();
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.0.append(&header, data).unwrap();
        self
    }

    fn file(self, path: &str, data: &str) -> Self {
        self.entry(EntryType::Regular, path, "", data.as_bytes())
    }

    fn symlink(self, path: &str, target: &str) -> Self {
        self.entry(EntryType::Symlink, path, target, b"")
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// A destination inside a sandbox whose sibling `outside/` must stay empty.
struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("outside")).unwrap();
        Self { root }
    }

    fn dest(&self) -> std::path::PathBuf {
        self.root.path().join("dest")
    }

    fn outside(&self) -> std::path::PathBuf {
        self.root.path().join("outside")
    }

    fn unpack(&self, bytes: &[u8], limits: &Limits) -> Result<Summary, Error> {
        archive::unpack(bytes, Compression::None, &self.dest(), limits)
    }

    /// The error, after checking nothing landed outside the destination.
    fn refused(&self, bytes: Vec<u8>) -> String {
        let err = self.unpack(&bytes, &Limits::default()).unwrap_err();
        assert_eq!(tree(&self.outside()), Vec::<String>::new(), "wrote outside");
        let siblings: Vec<_> = fs::read_dir(self.root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(siblings.len(), 2, "only dest/ and outside/: {siblings:?}");
        err.to_string()
    }
}

#[test]
fn parent_dir_entry_is_refused() {
    let sandbox = Sandbox::new();
    let err = sandbox.refused(Crafted::new().file("../outside/x", "pwned").bytes());
    assert_eq!(
        err,
        "archive entry `../outside/x` contains `..`; entries must stay inside the destination"
    );
}

#[test]
fn absolute_entry_is_refused() {
    let sandbox = Sandbox::new();
    let abs = sandbox.outside().join("abs");
    let err = sandbox.refused(Crafted::new().file(abs.to_str().unwrap(), "pwned").bytes());
    assert_eq!(
        err,
        format!(
            "archive entry `{}` has an absolute path; entries must be relative",
            abs.display()
        )
    );
}

#[test]
fn symlink_out_then_file_through_it_is_refused() {
    let sandbox = Sandbox::new();
    let outside = sandbox.outside();
    let bytes = Crafted::new()
        .symlink("link", outside.to_str().unwrap())
        .file("link/passwd", "root::0:0::/:/bin/sh")
        .bytes();
    let err = sandbox.refused(bytes);
    assert_eq!(
        err,
        format!(
            "symlink `link` -> `{}` is refused: its target is absolute; use a relative target",
            outside.display()
        )
    );
    assert_eq!(tree(&sandbox.dest()), Vec::<String>::new());

    let err = sandbox.refused(
        Crafted::new()
            .symlink("etc", "/etc")
            .file("etc/passwd", "x")
            .bytes(),
    );
    assert!(
        err.starts_with("symlink `etc` -> `/etc` is refused"),
        "{err}"
    );

    let err = sandbox.refused(
        Crafted::new()
            .symlink("sub/up", "../../outside")
            .file("sub/up/x", "x")
            .bytes(),
    );
    assert_eq!(
        err,
        "symlink `sub/up` -> `../../outside` is refused: its target climbs above the top of the tree"
    );
}

#[test]
fn link_to_dot_then_parent_after_name_is_refused() {
    let sandbox = Sandbox::new();
    let err = sandbox.refused(
        Crafted::new()
            .symlink("s", ".")
            .symlink("l", "s/..")
            .bytes(),
    );
    let expected = Error::Link {
        path: "l".into(),
        target: "s/..".into(),
        reason: LinkReason::ParentAfterName,
    };
    assert_eq!(err, expected.to_string());
}

#[test]
fn writing_through_any_symlink_is_refused() {
    // Even a link pointing inside is not written through.
    let sandbox = Sandbox::new();
    let err = sandbox.refused(
        Crafted::new()
            .file("real/keep", "k")
            .symlink("alias", "real")
            .file("alias/x", "x")
            .bytes(),
    );
    assert_eq!(
        err,
        "archive entry `alias/x` would be written through the symlink `alias`"
    );
    assert_eq!(tree(&sandbox.dest()), ["alias@", "real/", "real/keep"]);

    // A link already in the destination (not from the archive) pointing out.
    let sandbox = Sandbox::new();
    fs::create_dir(sandbox.dest()).unwrap();
    symlink(sandbox.outside(), sandbox.dest().join("evil")).unwrap();
    let err = sandbox.refused(Crafted::new().file("evil/passwd", "x").bytes());
    assert_eq!(
        err,
        "archive entry `evil/passwd` would be written through the symlink `evil`"
    );
}

#[test]
fn hard_links_devices_and_fifos_are_refused() {
    let sandbox = Sandbox::new();
    let err = sandbox.refused(
        Crafted::new()
            .entry(EntryType::Link, "h", "/etc/shadow", b"")
            .bytes(),
    );
    assert_eq!(
        err,
        "archive entry `h` is a hard link to `/etc/shadow`; hard links are not extracted"
    );
    for (kind, name) in [
        (EntryType::Char, "character device"),
        (EntryType::Block, "block device"),
        (EntryType::Fifo, "fifo"),
    ] {
        let err = sandbox.refused(Crafted::new().entry(kind, "dev", "", b"").bytes());
        assert_eq!(
            err,
            format!(
                "archive entry `dev` is a {name}; only files, directories and symlinks are extracted"
            )
        );
    }
}

#[test]
fn caps_on_entries_size_and_metadata() {
    let sandbox = Sandbox::new();
    let four = Crafted::new()
        .file("a", "1")
        .file("b", "2")
        .file("c", "3")
        .file("d", "4")
        .bytes();
    let limits = Limits {
        max_entries: 3,
        max_bytes: 100,
    };
    let err = sandbox.unpack(&four, &limits).unwrap_err();
    assert_eq!(
        err.to_string(),
        "archive has more than 3 entries (the `max_entries` cap)"
    );
    assert_eq!(
        sandbox
            .unpack(
                &four,
                &Limits {
                    max_entries: 4,
                    max_bytes: 4
                }
            )
            .unwrap()
            .bytes,
        4
    );

    let big = Crafted::new()
        .file("a", "12345")
        .file("b", "678901")
        .bytes();
    let err = sandbox
        .unpack(
            &big,
            &Limits {
                max_entries: 10,
                max_bytes: 10,
            },
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "archive expands to more than 10 bytes (the `max_bytes` cap)"
    );

    // A GNU long name of 2 MiB: the tar reader would hold it in memory.
    let huge_name = vec![b'n'; 2 * 1024 * 1024];
    let bomb = Crafted::new()
        .entry(EntryType::GNULongName, "././@LongLink", "", &huge_name)
        .file("x", "x")
        .bytes();
    let err = sandbox.unpack(&bomb, &Limits::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "archive entry metadata exceeds 1048576 bytes; the archive is malformed or hostile"
    );
}

#[test]
fn corrupt_blob_under_an_archive_is_reported() {
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("f"), vec![7u8; 10_000]).unwrap();
    let state = tempfile::tempdir().unwrap();
    let store = BlobStore::open(state.path()).unwrap();
    let mut writer = store.writer().unwrap();
    archive::pack(src.path(), Compression::None, &mut writer).unwrap();
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

#[test]
fn entries_replace_files_but_not_directories() {
    let sandbox = Sandbox::new();
    let bytes = Crafted::new().file("f", "old").file("f", "new").bytes();
    sandbox.unpack(&bytes, &Limits::default()).unwrap();
    assert_eq!(fs::read_to_string(sandbox.dest().join("f")).unwrap(), "new");

    let bytes = Crafted::new()
        .entry(EntryType::Directory, "d", "", b"")
        .file("d", "x")
        .bytes();
    let err = sandbox.unpack(&bytes, &Limits::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "archive entry `d` conflicts with an existing directory in the destination"
    );
}
