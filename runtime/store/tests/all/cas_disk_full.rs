//! A put into a store on a full file system fails with a clear, typed error
//! and leaves no partial blob. Uses a real 1 MiB tmpfs (needs root, as on
//! kiln's CI machines); says so and skips where mounting is not allowed.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use kiln_store::cas::{BlobStore, Error};

use crate::cas::tree;

/// A tmpfs of `size` mounted on a fresh temp dir; unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn disk_full_during_put_is_typed_and_leaves_no_blob() {
    let fs = match Tmpfs::mount("1m") {
        Ok(fs) => fs,
        Err(reason) => {
            eprintln!("SKIPPED disk_full_during_put: cannot mount a 1 MiB tmpfs: {reason}");
            return;
        }
    };
    let store = BlobStore::open(fs.path()).unwrap();
    let small = store.put_reader(&b"fits"[..]).unwrap().blob;

    let big = vec![0x5a_u8; 2 * 1024 * 1024];
    let err = store.put_reader(&big[..]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "disk full while storing a blob in `{}`: free space (`kiln artifacts gc`) and retry",
            fs.path().join("tmp").display()
        )
    );
    let Error::DiskFull { source, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(source.raw_os_error(), Some(28), "ENOSPC");
    let hex = small.digest.to_string();
    let expected = [
        "objects/".to_owned(),
        format!("objects/{}/", &hex[..2]),
        format!("objects/{}/{}", &hex[..2], &hex[2..]),
        "tmp/".to_owned(),
    ];
    assert_eq!(tree(fs.path()), expected, "no temp file, no partial blob");

    // The push-style writer reports the same cause from commit.
    let mut writer = store.writer().unwrap();
    let write_err = writer.write_all(&big).unwrap_err();
    assert_eq!(write_err.kind(), std::io::ErrorKind::StorageFull);
    assert!(matches!(writer.failure(), Some(Error::DiskFull { .. })));
    assert!(matches!(writer.commit(), Err(Error::DiskFull { .. })));
    assert_eq!(tree(fs.path()), expected);

    // The space came back: the store still works.
    assert!(store.put_reader(&b"after"[..]).unwrap().new);
}
