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

/// [`crate::cas::flip_byte`] on an artifact store's blobs.
fn flip_byte(store: &Artifacts, digest: &kiln_store::cas::Digest, at: usize) {
    crate::cas::flip_byte(store.blobs(), digest, at as u64);
}

/// Pseudo-random letters: poorly compressible text, so a flipped byte in
/// the middle of a packed tree lands in file data, not in a header.
fn noise(len: usize) -> String {
    let mut x: u32 = 0x2545_f491;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

#[test]
fn a_corrupt_tree_artifact_is_named_and_lands_nothing() {
    let fx = Fixture::new();
    fx.file("dist/a.txt", &noise(50_000));
    fx.file("dist/sub/b.txt", &noise(50_000));
    let run = fx.finished_run();
    let mut store = fx.artifacts();
    let dist = store
        .put(run, "build", "dist", fx.work.path(), "dist")
        .unwrap();
    flip_byte(&store, &dist.digest, dist.size as usize / 2);
    let actual = store.verify().unwrap().report.corrupt[0].1;

    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("dest");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("mine.txt"), "kept").unwrap();
    let err = store.get(run, "dist", &dest).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "blob `{}` is corrupt: its content hashes to `{actual}`; \
             it was not served, re-upload it or run `kiln artifacts verify`",
            dist.digest
        )
    );
    assert!(matches!(err, Error::Blob(_)), "{err:?}");
    // Nothing new in the destination, no staging directory beside it.
    let listing = |dir: &std::path::Path| -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(listing(&dest), ["mine.txt"]);
    assert_eq!(listing(out.path()), ["dest"]);
    // Into a destination that does not exist yet: it still does not.
    let err = store.get(run, "dist", &out.path().join("new")).unwrap_err();
    assert!(matches!(err, Error::Blob(_)), "{err:?}");
    assert_eq!(listing(out.path()), ["dest"]);

    // Re-uploading the same tree repairs the blob (see the next test).
    store
        .put(run, "build", "dist", fx.work.path(), "dist")
        .unwrap();
    store.get(run, "dist", &dest).unwrap();
    assert_eq!(listing(&dest), ["a.txt", "mine.txt", "sub"]);
    assert_eq!(
        fs::read_to_string(dest.join("sub/b.txt")).unwrap(),
        noise(50_000)
    );
}

#[test]
fn re_uploading_the_content_of_a_damaged_blob_repairs_it() {
    let fx = Fixture::new();
    fx.file("app", &noise(10_000));
    fx.file("dist/index.html", &noise(20_000));
    let run = fx.finished_run();
    let mut store = fx.artifacts();
    let app = store
        .put(run, "build", "app", fx.work.path(), "app")
        .unwrap();
    let dist = store
        .put(run, "build", "dist", fx.work.path(), "dist")
        .unwrap();
    flip_byte(&store, &app.digest, 5_000);
    flip_byte(&store, &dist.digest, dist.size as usize / 2);
    let found = store.verify().unwrap().report;
    assert_eq!(found.corrupt.len(), 2);

    // A file (hashed in place, the dedup path) and a tree (packed into a
    // new blob): both find their blob stored, with the right size and the
    // wrong bytes, and replace it.
    let later = fx.finished_run();
    store
        .put(later, "build", "app", fx.work.path(), "app")
        .unwrap();
    store
        .put(later, "build", "dist", fx.work.path(), "dist")
        .unwrap();
    let found = store.verify().unwrap();
    assert!(found.report.is_clean(), "{:?}", found.report);
    assert_eq!(found.report.checked, 2);
    let out = fx.work.path().join("out");
    store.get(run, "app", &out).unwrap();
    assert_eq!(fs::read_to_string(&out).unwrap(), noise(10_000));
}

#[test]
fn a_tree_over_the_caps_is_refused_when_uploaded_and_when_saved() {
    let fx = Fixture::new();
    for name in ["a", "b", "c"] {
        fx.file(&format!("dist/{name}"), "0123456789");
    }
    let run = fx.finished_run();
    let mut store = fx.artifacts();
    let dist = fx.work.path().join("dist");
    store.set_limits(kiln_store::archive::Limits {
        max_entries: 2,
        max_bytes: 1_000,
    });
    let err = store
        .put(run, "build", "dist", fx.work.path(), "dist")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot pack `{}`: it holds more than 2 entries (the `max_entries` cap), \
             so it could never be extracted; store fewer files",
            dist.display()
        )
    );
    let err = store
        .put_files(
            run,
            "build",
            "all",
            fx.work.path(),
            &["dist/a".into(), "dist/b".into()],
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot pack `{}`: it holds more than 2 entries (the `max_entries` cap), \
             so it could never be extracted; store fewer files",
            fx.work.path().display()
        )
    );
    store.set_limits(kiln_store::archive::Limits {
        max_entries: 100,
        max_bytes: 25,
    });
    let err = store
        .save_cache(run, "ship", "deps", &["dist".into()], fx.work.path())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot pack `{}`: it holds more than 25 bytes of files (the `max_bytes` cap), \
             so it could never be extracted; store less",
            dist.display()
        )
    );
    // Nothing was indexed or stored.
    assert_eq!(store.list(None).unwrap(), []);
    assert_eq!(store.caches().unwrap(), []);
    assert_eq!(store.blobs().blobs().unwrap(), []);
    // Within the caps, the same tree goes through.
    store.set_limits(kiln_store::archive::Limits {
        max_entries: 3,
        max_bytes: 30,
    });
    store
        .put(run, "build", "dist", fx.work.path(), "dist")
        .unwrap();
}

#[test]
fn retention_by_last_use_keeps_what_was_downloaded_lately() {
    let fx = Fixture::new();
    fx.file("app", "app");
    fx.file("docs", "docs");
    let run = fx.finished_run();
    let mut store = fx.artifacts();
    store
        .put(run, "build", "app", fx.work.path(), "app")
        .unwrap();
    store
        .put(run, "build", "docs", fx.work.path(), "docs")
        .unwrap();
    // Both uploaded and last used two hours ago.
    let db = rusqlite::Connection::open(fx.state.path().join("kiln.db")).unwrap();
    let two_hours_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 2 * 3_600_000;
    db.execute(
        "UPDATE artifacts SET created_ms = ?1, accessed_ms = ?1",
        [two_hours_ago],
    )
    .unwrap();
    // A download now counts as use; the upload's age does not matter.
    store
        .get(run, "app", &fx.work.path().join("fetched"))
        .unwrap();
    let idle = Policy {
        max_idle: Some(Duration::from_secs(3_600)),
        ..Policy::default()
    };
    let plan = store.gc(&idle, false).unwrap();
    assert_eq!(
        decisions(&plan),
        [
            format!("keep artifact `app` of run {run} (job `build`): within the retention policy"),
            format!("drop artifact `docs` of run {run} (job `build`): not used for max-idle 1h"),
        ]
    );
    assert_eq!(plan.freed(), 4);
    let left: Vec<String> = store
        .list(None)
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(left, ["app"]);
}
