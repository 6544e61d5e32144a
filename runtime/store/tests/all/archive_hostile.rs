//! Hostile archives, crafted header by header: nothing may land outside
//! the destination, and each refusal says why.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use kiln_store::archive::{self, Compression, Error, Limits, LinkReason, Summary};
use tar::{Builder, EntryType, Header};

use crate::cas::tree;

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

    fn dest(&self) -> PathBuf {
        self.root.path().join("dest")
    }

    fn outside(&self) -> PathBuf {
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
