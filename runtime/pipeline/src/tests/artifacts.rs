//! `artifacts:`, `download:` and `cache:`: what loads, and every refusal
//! with its position.

use super::{plan, problems};

#[test]
fn artifacts_download_and_cache_load() {
    let p = plan(
        "jobs:\n  build:\n    steps: [{run: make}]\n    artifacts:\n      app: target/app\n      reports: [\"out/*.xml\", \"!out/skip.xml\"]\n    cache:\n      key: deps-${{ hashFiles('Cargo.lock') }}\n      restore-keys: deps-\n      paths: [~/.cargo/registry, target]\n  test:\n    needs: build\n    download: [app]\n    steps: [{run: ./target/app}]\n",
    );
    let build = &p.jobs[0];
    assert_eq!(build.artifacts.len(), 2);
    assert_eq!(build.artifacts[1].name, "reports");
    assert_eq!(build.artifacts[1].paths, ["out/*.xml", "!out/skip.xml"]);
    let cache = build.cache.as_ref().unwrap();
    assert!(cache.key.as_literal().is_none());
    assert_eq!(cache.restore_keys.len(), 1);
    assert_eq!(cache.paths, ["~/.cargo/registry", "target"]);
    assert_eq!(build.download, None);
    assert_eq!(p.jobs[1].download, Some(vec!["app".to_owned()]));
}

#[test]
fn bad_names_and_paths_point_at_themselves() {
    assert_eq!(
        problems(
            "jobs:\n  build:\n    steps: [{run: make}]\n    artifacts:\n      a/b: x\n      ok: ../secret\n      abs: /etc/passwd\n      \"..\": x\n"
        ),
        [
            "5:7 invalid-name invalid artifact name `a/b`: it contains a path separator",
            "6:11 invalid-path `../secret` contains `..`; name the files from the workspace down",
            "7:12 invalid-path `/etc/passwd` is outside the workspace; artifact paths are relative to the workspace",
            "8:7 invalid-name invalid artifact name `..`: it contains `..`",
        ]
    );
}

#[test]
fn download_names_an_artifact_of_a_needed_job() {
    assert_eq!(
        problems(
            "jobs:\n  build:\n    steps: [{run: make}]\n    artifacts: {app: out/app}\n  lint:\n    steps: [{run: lint}]\n    artifacts: {report: r.txt}\n  test:\n    needs: [build]\n    download: [ap, report]\n    steps: [{run: t}]\n"
        ),
        [
            "10:16 unknown-artifact job `test` downloads artifact `ap`, which no job in its `needs` uploads",
            "10:20 unknown-artifact job `test` downloads artifact `report`, which no job in its `needs` uploads",
        ]
    );
    let err = super::try_load(
        "jobs:\n  build:\n    steps: [{run: make}]\n    artifacts: {app: out/app}\n  test:\n    needs: [build]\n    download: [ap]\n    steps: [{run: t}]\n",
    )
    .unwrap_err();
    assert_eq!(
        err.diagnostics[0].help.as_deref(),
        Some("did you mean `app`?")
    );
}

#[test]
fn cache_needs_key_and_paths() {
    assert_eq!(
        problems(
            "jobs:\n  build:\n    steps: [{run: make}]\n    cache: {restore-keys: [a-], pathz: [x]}\n"
        ),
        [
            "4:5 missing-field `cache` needs `key`",
            "4:5 missing-field `cache` needs `paths`",
            "4:33 unknown-field unknown field `pathz` in `cache`",
        ]
    );
    assert_eq!(
        problems(
            "jobs:\n  build:\n    steps: [{run: make}]\n    cache: {key: \"${{ nope.x }}\", paths: [a/../../b]}\n"
        ),
        [
            "4:23 unknown-context unknown context `nope`",
            "4:43 invalid-path `a/../../b` contains `..`; name the files from the workspace down",
        ]
    );
}

#[test]
fn seed_artifact_steps_are_named_after_their_path() {
    assert_eq!(
        problems(
            "jobs:\n  a:\n    steps:\n      - artifact: ../up\n      - download_artifact: .\n"
        ),
        [
            "4:19 invalid-path `../up` contains `..`; name the files from the workspace down",
            "5:28 invalid-name invalid artifact name `.`: it is `.`",
        ]
    );
}
