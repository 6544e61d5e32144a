//! The artifact index over the blob store: by-name put/get (what plugins
//! use), references of live runs, pins and each retention policy.

use std::fs;
use std::time::Duration;

use kiln_store::artifacts::retention::{Drop, Keep, ORPHAN_GRACE, Policy, Subject};
use kiln_store::artifacts::{Artifacts, Error, Kind};
use kiln_store::{RunStatus, Store};

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

    fn file(&self, rel: &str, text: &str) {
        let path = self.work.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn artifacts(&self) -> Artifacts {
        Artifacts::open(self.state.path()).unwrap()
    }

    /// A finished run of pipeline `ship`.
    fn finished_run(&self) -> i64 {
        let mut store = Store::open(self.state.path()).unwrap();
        let live = store.begin_run("ship", "kiln.yml").unwrap();
        let id = live.id();
        store
            .finish_run(live, RunStatus::Success, Duration::ZERO)
            .unwrap();
        id
    }
}

fn decisions(plan: &kiln_store::artifacts::retention::Plan) -> Vec<String> {
    plan.entries
        .iter()
        .map(|e| match &e.decision {
            Ok(keep) => format!("keep {}: {keep}", e.subject),
            Err(drop) => format!("drop {}: {drop}", e.subject),
        })
        .collect()
}

#[test]
fn put_and_get_by_name_round_trip_files_and_trees() {
    let fx = Fixture::new();
    fx.file("out/app", "binary");
    fx.file("dist/a.js", "a");
    fx.file("dist/sub/b.js", "b");
    let run = fx.finished_run();
    let mut store = fx.artifacts();
    let app = store
        .put(run, "build", "app", fx.work.path(), "out/app")
        .unwrap();
    assert_eq!(
        (app.kind, app.path.as_str(), app.size),
        (Kind::File, "out/app", 6)
    );
    let dist = store
        .put(run, "build", "dist", fx.work.path(), "dist/")
        .unwrap();
    assert_eq!((dist.kind, dist.path.as_str()), (Kind::Tree, "dist"));

    let dest = fx.work.path().join("fetched");
    let got = store.get(run, "app", &dest.join("app")).unwrap();
    assert_eq!(got.digest, app.digest);
    assert_eq!(fs::read_to_string(dest.join("app")).unwrap(), "binary");
    store.get(run, "dist", &dest.join("dist")).unwrap();
    assert_eq!(fs::read_to_string(dest.join("dist/sub/b.js")).unwrap(), "b");

    let err = store.get(run, "nope", &dest).unwrap_err();
    assert_eq!(err.to_string(), format!("run {run} has no artifact `nope`"));
    let err = store
        .put(run, "build", "a/b", fx.work.path(), "out/app")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid artifact name `a/b`: it contains a path separator"
    );
    assert!(matches!(err, Error::InvalidName { .. }));

    // A second job uploading the same name makes the by-name read ambiguous.
    store
        .put(run, "build-2", "app", fx.work.path(), "out/app")
        .unwrap();
    let err = store.get(run, "app", &dest.join("x")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "artifact `app` is ambiguous: run {run} job `build`, run {run} job `build-2`; several jobs uploaded it"
        )
    );
}

#[test]
fn a_live_run_reading_an_old_cache_keeps_it_through_gc() {
    let fx = Fixture::new();
    fx.file("vendor/lib.txt", "dependency");
    let old = fx.finished_run();
    let mut store = fx.artifacts();
    store
        .save_cache(old, "ship", "deps-1", &["vendor".into()], fx.work.path())
        .unwrap()
        .unwrap();
    let everything_old = Policy {
        max_age: Some(Duration::ZERO),
        ..Policy::default()
    };

    // A new run restores the old entry, then gc runs while it is live.
    let mut records = Store::open(fx.state.path()).unwrap();
    let live = records.begin_run("ship", "kiln.yml").unwrap();
    fs::remove_dir_all(fx.work.path().join("vendor")).unwrap();
    let hit = store
        .restore_cache(live.id(), "deps-2", &["deps-".into()], fx.work.path())
        .unwrap()
        .unwrap();
    assert_eq!((hit.key.as_str(), hit.exact), ("deps-1", false));
    let plan = store.gc(&everything_old, false).unwrap();
    assert_eq!(
        decisions(&plan),
        [format!(
            "keep cache `deps-1`: in use by running run {}",
            live.id()
        )]
    );
    assert!(plan.blobs.is_empty());

    // Once it ended, the reference protects nothing.
    records
        .finish_run(live, RunStatus::Success, Duration::ZERO)
        .unwrap();
    let plan = store.gc(&everything_old, false).unwrap();
    assert_eq!(
        decisions(&plan),
        ["drop cache `deps-1`: older than max-age 0s"]
    );
    assert_eq!(plan.blobs.len(), 1);
    assert!(store.caches().unwrap().is_empty());
    assert!(store.blobs().blobs().unwrap().is_empty());
}

#[test]
fn retention_by_count_size_and_pins_with_reasons() {
    let fx = Fixture::new();
    let mut store = fx.artifacts();
    let mut digests = Vec::new();
    for i in 1..=3 {
        fx.file("app", &"x".repeat(100 * i));
        let run = fx.finished_run();
        digests.push(
            store
                .put(run, "build", "app", fx.work.path(), "app")
                .unwrap()
                .digest,
        );
    }
    assert!(store.pin(&digests[0]).unwrap());
    assert!(!store.pin(&digests[0]).unwrap(), "already pinned");

    let keep_one = Policy {
        keep_runs: Some(1),
        ..Policy::default()
    };
    let plan = store.gc(&keep_one, true).unwrap();
    assert_eq!(
        decisions(&plan),
        [
            "keep artifact `app` of run 1 (job `build`): pinned",
            "drop artifact `app` of run 2 (job `build`): not among the newest 1 runs of pipeline `ship`",
            "keep artifact `app` of run 3 (job `build`): within the retention policy",
        ]
    );
    assert_eq!(plan.blobs.len(), 1);
    assert_eq!(
        store.list(None).unwrap().len(),
        3,
        "a dry run changes nothing"
    );

    // 600 bytes stored, at most 450 allowed: the least recently used
    // unpinned entry (run 2) goes, which is enough.
    let small = Policy {
        max_size: Some(450),
        ..Policy::default()
    };
    let plan = store.gc(&small, false).unwrap();
    assert_eq!(plan.entries[1].decision, Err(Drop::Size(450)));
    assert_eq!(plan.entries[0].decision, Ok(Keep::Pinned));
    assert_eq!(plan.entries[2].decision, Ok(Keep::Policy));
    assert_eq!(plan.freed(), 200);
    let left: Vec<i64> = store.list(None).unwrap().iter().map(|a| a.run).collect();
    assert_eq!(left, [3, 1]);
    assert!(matches!(
        &plan.entries[1].subject,
        Subject::Artifact { run: 2, .. }
    ));

    // Unpinned, run 1 is now the oldest beyond one run.
    assert!(store.unpin(&digests[0]).unwrap());
    let plan = store.gc(&keep_one, false).unwrap();
    assert_eq!(plan.freed(), 100);
    assert!(store.verify().unwrap().report.is_clean());
}

#[test]
fn an_orphaned_blob_is_collected_and_verify_names_users_of_a_missing_one() {
    let fx = Fixture::new();
    fx.file("app", "app");
    let run = fx.finished_run();
    let mut store = fx.artifacts();
    let app = store
        .put(run, "build", "app", fx.work.path(), "app")
        .unwrap();
    let orphan = store.blobs().put_reader(&b"left over"[..]).unwrap().blob;
    let found = store.verify().unwrap();
    assert_eq!(found.report.orphaned, [orphan.digest]);
    // Fresh, it may be an upload about to index it: kept.
    let plan = store.gc(&Policy::default(), false).unwrap();
    assert_eq!(plan.blobs, []);
    assert!(store.blobs().contains(&orphan.digest));
    // Past the grace it is a left-over: collected.
    let written = std::time::SystemTime::now() - ORPHAN_GRACE - Duration::from_secs(1);
    std::fs::File::open(store.blobs().object_path(&orphan.digest))
        .unwrap()
        .set_modified(written)
        .unwrap();
    let plan = store.gc(&Policy::default(), false).unwrap();
    assert_eq!(plan.blobs.len(), 1);
    assert_eq!(plan.blobs[0].0, orphan.digest);

    store.blobs().remove(&app.digest).unwrap();
    let found = store.verify().unwrap();
    assert_eq!(found.report.missing, [app.digest]);
    assert_eq!(
        found.users,
        [(
            app.digest,
            vec![format!("artifact `app` of run {run} (job `build`)")]
        )]
    );
}

/// A tar written header by header (names the `tar` crate would refuse),
/// zstd-compressed like a tree artifact.
fn crafted(entries: &[(tar::EntryType, &str, &str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (kind, path, link, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    zstd::encode_all(&builder.into_inner().unwrap()[..], 3).unwrap()
}

#[test]
fn a_hostile_tree_artifact_lands_nothing_outside_its_destination() {
    use tar::EntryType::{Regular, Symlink};
    let fx = Fixture::new();
    let run = fx.finished_run();
    let mut store = fx.artifacts();
    let outside = fx.work.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let abs = outside.join("abs");
    let cases: [(&str, Vec<u8>, String); 3] = [
        (
            "up",
            crafted(&[(Regular, "../outside/x", "", b"pwned")]),
            "archive entry `../outside/x` contains `..`; entries must stay inside the destination"
                .to_owned(),
        ),
        (
            "abs",
            crafted(&[(Regular, abs.to_str().unwrap(), "", b"pwned")]),
            format!(
                "archive entry `{}` has an absolute path; entries must be relative",
                abs.display()
            ),
        ),
        (
            "etc",
            crafted(&[
                (Symlink, "etc", "/etc", b""),
                (Regular, "etc/passwd", "", b"x"),
            ]),
            "symlink `etc` -> `/etc` is refused: its target is absolute; use a relative target"
                .to_owned(),
        ),
    ];
    for (name, bytes, expected) in cases {
        store
            .put_reader(run, "evil", name, Kind::Tree, "", &bytes[..])
            .unwrap();
        let dest = fx.work.path().join("dest");
        let err = store.get(run, name, &dest).unwrap_err();
        assert_eq!(err.to_string(), expected, "{name}");
        assert!(matches!(err, Error::Archive(_)), "{name}: {err:?}");
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            0,
            "{name} wrote outside"
        );
        // Refused before it was made: no link to /etc waits in the destination.
        assert!(fs::symlink_metadata(dest.join("etc")).is_err(), "{name}");
    }
}
