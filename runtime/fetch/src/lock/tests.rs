use super::*;

fn digest(byte: u8) -> Digest {
    Digest::from_bytes([byte; 32])
}

fn pin(byte: u8) -> Pin {
    Pin::new(digest(byte))
}

const REF: &str = "oci://r.example/a:1";

#[test]
fn an_unpinned_reference_is_recorded_or_refused() {
    for drift in [Drift::Follows, Drift::Tag, Drift::Fixed] {
        assert_eq!(
            decide(REF, drift, None, &pin(1), Mode::Update),
            Ok(Verdict::Record(pin(1)))
        );
        assert_eq!(
            decide(REF, drift, None, &pin(1), Mode::Locked),
            Err(Refusal::Unpinned)
        );
    }
}

#[test]
fn a_matching_pin_is_unchanged_in_every_mode() {
    for drift in [Drift::Follows, Drift::Tag, Drift::Fixed] {
        for mode in [Mode::Update, Mode::Locked] {
            assert_eq!(
                decide(REF, drift, Some(&pin(1)), &pin(1), mode),
                Ok(Verdict::Unchanged)
            );
        }
    }
}

#[test]
fn metadata_refreshes_quietly_but_never_under_locked() {
    let mut observed = pin(1);
    observed.manifest = Some(digest(9));
    assert_eq!(
        decide(REF, Drift::Tag, Some(&pin(1)), &observed, Mode::Update),
        Ok(Verdict::Refresh(observed.clone()))
    );
    assert_eq!(
        decide(REF, Drift::Tag, Some(&pin(1)), &observed, Mode::Locked),
        Ok(Verdict::Unchanged)
    );
}

#[test]
fn a_followed_reference_is_repinned_unless_locked() {
    assert_eq!(
        decide(
            "./a.wasm",
            Drift::Follows,
            Some(&pin(1)),
            &pin(2),
            Mode::Update
        ),
        Ok(Verdict::Update {
            old: digest(1),
            new: pin(2)
        })
    );
    assert_eq!(
        decide(
            "./a.wasm",
            Drift::Follows,
            Some(&pin(1)),
            &pin(2),
            Mode::Locked
        ),
        Err(Refusal::Mismatch {
            pinned: digest(1),
            resolved: digest(2),
            help: "if the change is intended, re-pin it with `kiln plugin install ./a.wasm` \
                   (or run once without `--locked`) and commit `kiln.lock`"
                .into()
        })
    );
}

#[test]
fn a_moved_tag_is_refused_in_both_modes() {
    for mode in [Mode::Update, Mode::Locked] {
        assert_eq!(
            decide(REF, Drift::Tag, Some(&pin(1)), &pin(2), mode),
            Err(Refusal::Mismatch {
                pinned: digest(1),
                resolved: digest(2),
                help: format!(
                    "the tag now names other content; if that is intended, pin it with \
                     `kiln plugin install {REF}` (or delete its entry from `kiln.lock`)"
                )
            })
        );
    }
}

#[test]
fn a_wrong_pin_of_a_digest_reference_is_refused() {
    for mode in [Mode::Update, Mode::Locked] {
        assert_eq!(
            decide(REF, Drift::Fixed, Some(&pin(1)), &pin(2), mode),
            Err(Refusal::Mismatch {
                pinned: digest(1),
                resolved: digest(2),
                help: "the reference names its own digest, so this pin is wrong: \
                       delete its entry from `kiln.lock`"
                    .into()
            })
        );
    }
}

#[test]
fn the_file_is_deterministic_and_round_trips() {
    let mut lock = Lockfile::empty("kiln.lock".into());
    let mut oci = pin(0xab);
    oci.manifest = Some(digest(0xcd));
    lock.set("oci://r/a:1", oci);
    let mut bundled = pin(1);
    bundled.version = Some("1.2.0".into());
    lock.set("kiln/render@1", bundled);
    lock.set("./a.wasm", pin(2));
    let text = lock.to_text();
    let ab = "ab".repeat(32);
    let cd = "cd".repeat(32);
    let one = "01".repeat(32);
    let two = "02".repeat(32);
    assert_eq!(
        text,
        format!(
            "{{\n  \"version\": 1,\n  \"plugins\": {{\n    \"./a.wasm\": {{\n      \"digest\": \"sha256:{two}\"\n    }},\n    \
             \"kiln/render@1\": {{\n      \"digest\": \"sha256:{one}\",\n      \"version\": \"1.2.0\"\n    }},\n    \
             \"oci://r/a:1\": {{\n      \"digest\": \"sha256:{ab}\",\n      \"manifest\": \"sha256:{cd}\"\n    }}\n  }}\n}}\n"
        )
    );
    let back = Lockfile::parse("kiln.lock".into(), &text).unwrap();
    assert_eq!(back.to_text(), text);
    assert_eq!(back.get("./a.wasm"), Some(&pin(2)));
}

#[test]
fn set_and_remove_track_changes() {
    let mut lock = Lockfile::empty("kiln.lock".into());
    assert!(!lock.is_dirty());
    assert_eq!(lock.set("a", pin(1)), None);
    assert!(lock.is_dirty());
    lock.dirty = false;
    assert_eq!(lock.set("a", pin(1)), None);
    assert!(!lock.is_dirty(), "setting the same pin changes nothing");
    assert_eq!(lock.set("a", pin(2)), Some(pin(1)));
    assert_eq!(lock.remove("a"), Some(pin(2)));
    assert_eq!(lock.remove("a"), None);
}

#[test]
fn bad_files_say_where_and_what_to_do() {
    let err = Lockfile::parse(
        "ci/kiln.lock".into(),
        "{\n  \"version\": 1,\n  \"plugins\": {\"a\": {\"digest\": \"sha256:xyz\"}}\n}",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot read `ci/kiln.lock`: `sha256:xyz` is not `sha256:` and 64 lowercase hex characters at line 3 column 43; \
         fix it or delete it, then re-pin with `kiln run`"
    );
    let err = Lockfile::parse("kiln.lock".into(), "{\"version\": 2}").unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot read `kiln.lock`: format version 2 is not 1, the one this kiln understands; \
         fix it or delete it, then re-pin with `kiln run`"
    );
    let err = Lockfile::parse("kiln.lock".into(), "{\"version\": 1, \"pins\": {}}").unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot read `kiln.lock`: unknown field `pins`, expected `version` or `plugins` at line 1 column 21; \
         fix it or delete it, then re-pin with `kiln run`"
    );
}

#[test]
fn load_and_save() {
    let dir = tempfile::tempdir().unwrap();
    let path = Lockfile::path_in(dir.path());
    let mut lock = Lockfile::load(&path).unwrap();
    assert_eq!(lock.pins().count(), 0);
    lock.save().unwrap();
    assert!(!path.exists(), "nothing changed, nothing written");
    lock.set("./a.wasm", pin(3));
    lock.save().unwrap();
    assert_eq!(
        Lockfile::load(&path).unwrap().get("./a.wasm"),
        Some(&pin(3))
    );
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp file left"
    );
}
