//! The windows where `gc` and a job meet, driven step by step through the
//! hooks the library leaves there: a restore between its lookup and its
//! references, and a gc between its index commit and its file deletions.

use std::fs;
use std::time::{Duration, SystemTime};

use super::retention::{BlobDrop, ORPHAN_GRACE, Policy};
use super::{Artifacts, Error};
use crate::{RunStatus, Store};

struct Fixture {
    state: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self {
            state: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
        }
    }

    fn artifacts(&self) -> Artifacts {
        Artifacts::open(self.state.path()).unwrap()
    }

    fn records(&self) -> Store {
        Store::open(self.state.path()).unwrap()
    }

    fn finished_run(&self) -> i64 {
        let mut store = self.records();
        let live = store.begin_run("ship", "kiln.yml").unwrap();
        let id = live.id();
        store
            .finish_run(live, RunStatus::Success, Duration::ZERO)
            .unwrap();
        id
    }
}

fn everything_old() -> Policy {
    Policy {
        max_age: Some(Duration::ZERO),
        ..Policy::default()
    }
}

/// A gc that does not wait for the write lock: it fails where it would
/// have to interleave.
fn impatient_gc(fx: &Fixture) -> Result<super::retention::Plan, Error> {
    let mut other = fx.artifacts();
    other.conn.busy_timeout(Duration::ZERO).unwrap();
    other.gc(&everything_old(), false)
}

#[test]
fn a_gc_cannot_run_between_a_restores_lookup_and_its_references() {
    let fx = Fixture::new();
    fs::create_dir(fx.work.path().join("vendor")).unwrap();
    fs::write(fx.work.path().join("vendor/lib.txt"), "dependency").unwrap();
    let old = fx.finished_run();
    let mut store = fx.artifacts();
    store
        .save_cache(old, "ship", "deps-1", &["vendor".into()], fx.work.path())
        .unwrap()
        .unwrap();
    fs::remove_dir_all(fx.work.path().join("vendor")).unwrap();

    let mut records = fx.records();
    let live = records.begin_run("ship", "kiln.yml").unwrap();
    let mut raced = None;
    let hit = store
        .restore_cache_observed(
            live.id(),
            "deps-2",
            &["deps-".into()],
            fx.work.path(),
            || raced = Some(impatient_gc(&fx)),
        )
        .unwrap()
        .unwrap();
    // The gc found the database locked: it would have waited for the
    // restore, not deleted the entry under it.
    let Some(Err(Error::Index { source })) = raced else {
        panic!("gc was not held off: {raced:?}")
    };
    assert_eq!(
        source.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy),
        "{source}"
    );
    assert_eq!((hit.key.as_str(), hit.exact), ("deps-1", false));
    assert_eq!(
        fs::read_to_string(fx.work.path().join("vendor/lib.txt")).unwrap(),
        "dependency"
    );
    // Run after the restore, gc finds the reference and keeps everything.
    let plan = impatient_gc(&fx).unwrap();
    assert_eq!(plan.blobs, []);
    assert_eq!(store.caches().unwrap().len(), 1);
    records
        .finish_run(live, RunStatus::Success, Duration::ZERO)
        .unwrap();
}

#[test]
fn a_gc_that_ran_first_makes_the_restore_a_clean_miss() {
    let fx = Fixture::new();
    fs::write(fx.work.path().join("lock.txt"), "v1").unwrap();
    let old = fx.finished_run();
    let mut store = fx.artifacts();
    store
        .save_cache(old, "ship", "deps-1", &["lock.txt".into()], fx.work.path())
        .unwrap()
        .unwrap();
    assert_eq!(impatient_gc(&fx).unwrap().blobs.len(), 1);
    let mut records = fx.records();
    let live = records.begin_run("ship", "kiln.yml").unwrap();
    let hit = store
        .restore_cache(live.id(), "deps-1", &[], fx.work.path())
        .unwrap();
    assert_eq!(hit, None);
    records
        .finish_run(live, RunStatus::Success, Duration::ZERO)
        .unwrap();
}

#[test]
fn gc_commits_the_index_before_deleting_files_and_spares_a_blob_taken_up_again() {
    let fx = Fixture::new();
    fs::write(fx.work.path().join("app"), "binary").unwrap();
    let first = fx.finished_run();
    let mut store = fx.artifacts();
    let app = store
        .put(first, "build", "app", fx.work.path(), "app")
        .unwrap();
    let blob = store.blobs().object_path(&app.digest);

    // Between the two steps: the entry is gone from the index, the file is
    // still there, and another kiln uploads the same content again.
    let second = fx.finished_run();
    let plan = store
        .gc_observed(&everything_old(), false, || {
            let mut other = fx.artifacts();
            assert_eq!(other.list(None).unwrap(), []);
            assert!(blob.is_file());
            other
                .put(second, "build", "app", fx.work.path(), "app")
                .unwrap();
        })
        .unwrap();
    assert_eq!(plan.blobs, [], "the blob was indexed again: kept");
    assert_eq!(plan.kept_bytes, 6);
    assert!(store.verify().unwrap().report.is_clean());

    // A gc that dies between the two steps leaves an orphan, never an
    // entry without its blob; the next gc collects the orphan.
    let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.gc_observed(&everything_old(), false, || panic!("killed"))
    }));
    assert!(died.is_err());
    let found = store.verify().unwrap();
    assert_eq!(found.report.missing, []);
    assert_eq!(found.report.orphaned, [app.digest]);
    let written = SystemTime::now() - ORPHAN_GRACE - Duration::from_secs(1);
    fs::File::open(&blob)
        .unwrap()
        .set_modified(written)
        .unwrap();
    let plan = store.gc(&Policy::default(), false).unwrap();
    assert_eq!(plan.blobs, [(app.digest, 6, BlobDrop::Orphaned)]);
    assert!(!blob.exists());
}
