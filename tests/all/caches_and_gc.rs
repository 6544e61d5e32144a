//! Caches and retention end to end: exact-key and restore-keys restores,
//! `kiln artifacts gc` with its policies and reasons, pins, and a gc that
//! runs while a job downloads.

use std::process::Stdio;

use crate::artifacts::sha256;
use crate::support::Kiln;

#[test]
fn gc_keeps_pinned_and_in_use_artifacts_even_while_a_job_downloads_them() {
    let kiln = Kiln::new().pipeline(
        "jobs:
  build:
    steps:
      - run: head -c 16777216 /dev/urandom > blob.bin && sha256sum blob.bin > blob.sum
    artifacts: { blob: blob.bin, sum: blob.sum }
  clean:
    needs: [build]
    download: []
    steps: [{run: rm blob.bin}]
  use:
    needs: [build, clean]
    steps:
      - run: sha256sum -c blob.sum && sleep 1
",
    );
    // Run 1 finishes; its `sum` is pinned.
    kiln.run_with(["run", "--jobs", "1"]).code(0);
    kiln.run_with(["artifacts", "pin", "sum", "--run", "1"])
        .code(0)
        .stdout_has("pinned sha256:");

    // Run 2 runs while gc, told to drop everything (`--max-age 0s`), runs
    // over and over.
    let mut run = kiln
        .command(["run", "--jobs", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut plans = Vec::new();
    while run.try_wait().unwrap().is_none() {
        let gc = kiln.run_with(["artifacts", "gc", "--max-age", "0s"]);
        gc.code(0);
        plans.push(gc.stdout);
    }
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("[use] blob.bin: OK\n"), "{stdout}");
    // Some gc ran while run 2's artifacts existed: it kept them, and it
    // kept the pinned one of run 1 while dropping the rest of run 1.
    let during = plans
        .iter()
        .find(|p| p.contains("artifact `blob` of run 2"))
        .unwrap_or_else(|| panic!("no gc saw run 2's artifacts: {plans:#?}"));
    assert!(
        during.contains(
            "kept    artifact `blob` of run 2 (job `build`) (16.0 MiB): in use by running run 2\n"
        ),
        "{during}"
    );
    assert!(
        during.contains("kept    artifact `sum` of run 1 (job `build`) ("),
        "{during}"
    );
    assert!(during.contains("): pinned\n"), "{during}");

    // Once run 2 is over (perhaps already in the loop's last round), its
    // artifacts go; the pinned one stays.
    let dry = kiln.run_with(["artifacts", "gc", "--max-age", "0s", "--dry-run"]);
    dry.code(0)
        .stdout_has("keep   artifact `sum` of run 1 (job `build`) (");
    plans.push(kiln.run_with(["artifacts", "gc", "--max-age", "0s"]).stdout);
    assert!(
        plans.iter().any(|p| p.contains(
            "removed artifact `blob` of run 2 (job `build`) (16.0 MiB): older than max-age 0s\n"
        )),
        "{plans:#?}"
    );
    let list = kiln.run_with(["artifacts", "list", "--json"]).json_lines();
    let names: Vec<String> = list
        .iter()
        .map(|a| format!("{} {}", a["run"], a["name"].as_str().unwrap()))
        .collect();
    assert_eq!(names, ["1 sum"]);
    kiln.run_with(["artifacts", "verify"]).code(0);
}

#[test]
fn cache_restores_by_exact_key_then_falls_back_to_restore_keys() {
    let kiln = Kiln::new().file("deps.lock", "v1\n").pipeline(
        "jobs:
  deps:
    cache:
      key: deps-${{ hashFiles('deps.lock') }}
      restore-keys: [deps-]
      paths: [vendor]
    steps:
      - run: |
          if [ -f vendor/marker ]; then echo \"restored $(cat vendor/marker)\"; else echo cold; fi
          mkdir -p vendor && cat deps.lock > vendor/marker
",
    );
    let v1 = format!("deps-{}", sha256(&hex_decode(&sha256(b"v1\n"))));
    let first = kiln.run_with(["run"]);
    first
        .code(0)
        .stdout_has(&format!(
            "[deps] ⟲ cache {v1} missed (no entry matches the key or its restore-keys)\n"
        ))
        .stdout_has("[deps] cold\n")
        .stdout_has(&format!("[deps] ⟲ cache {v1} saved "));

    std::fs::remove_dir_all(kiln.path("vendor")).unwrap();
    let second = kiln.run_with(["run"]);
    second
        .code(0)
        .stdout_has(&format!("[deps] ⟲ cache {v1} restored (exact key) 3 B\n"))
        .stdout_has("[deps] restored v1\n");
    assert!(
        !second.stdout.contains("saved"),
        "an exact hit is not saved again\n{second}"
    );

    std::fs::remove_dir_all(kiln.path("vendor")).unwrap();
    std::fs::write(kiln.path("deps.lock"), "v2\n").unwrap();
    let v2 = format!("deps-{}", sha256(&hex_decode(&sha256(b"v2\n"))));
    let third = kiln.run_with(["run"]);
    third
        .code(0)
        .stdout_has(&format!(
            "[deps] ⟲ cache {v1} restored (restore-keys prefix `deps-`) 3 B\n"
        ))
        .stdout_has("[deps] restored v1\n")
        .stdout_has(&format!("[deps] ⟲ cache {v2} saved "));
    let list = kiln.run_with(["artifacts", "list"]);
    list.code(0)
        .stdout_has("CACHE KEY")
        .stdout_has(&v1)
        .stdout_has(&v2);
}

#[test]
fn gc_policy_comes_from_retention_conf_and_flags_with_clear_errors() {
    let kiln = Kiln::new()
        .pipeline("jobs:\n  b:\n    steps: [{run: 'echo x > x'}]\n    artifacts: {x: x}\n");
    kiln.run_with(["run"]).code(0);
    kiln.run_with(["run"]).code(0);
    std::fs::write(
        kiln.path(".kiln/retention.conf"),
        "# one run is enough\nkeep-runs = 1\n",
    )
    .unwrap();
    kiln.run_with(["artifacts", "gc", "--dry-run"])
        .code(0)
        .stdout_has("remove artifact `x` of run 1 (job `b`) (2 B): not among the newest 1 runs of pipeline `kiln`\n")
        .stdout_has("keep   artifact `x` of run 2 (job `b`) (2 B): within the retention policy\n")
        // Same bytes in both runs: one blob, still used by run 2.
        .stdout_has("would free 0 blobs, 0 B; 2 B kept\n");
    // A flag overrides the file.
    kiln.run_with(["artifacts", "gc", "--dry-run", "--keep-runs", "2"])
        .code(0)
        .stdout_has("keep   artifact `x` of run 1 (job `b`) (2 B): within the retention policy\n");
    kiln.run_with(["artifacts", "gc", "--max-age", "soon"])
        .code(2)
        .stderr_is(
            "error: --max-age: `soon` is not a duration (e.g. `30d`, `12h`, `90m`, `45s`)\n",
        );
    std::fs::write(
        kiln.path(".kiln/retention.conf"),
        "keep-runs = 1\nmax-size 1GiB\n",
    )
    .unwrap();
    kiln.run_with(["artifacts", "gc"])
        .code(2)
        .stderr_is(&format!(
            "error: {}:2: expected `key = value`, found `max-size 1GiB`\n",
            kiln.path(".kiln/retention.conf").display()
        ));
    let zero = "0".repeat(64);
    kiln.run_with(["artifacts", "pin", &zero])
        .code(2)
        .stderr_is(&format!("error: blob `{zero}` is not in the store\n"));
    kiln.run_with(["artifacts", "unpin", "x"])
        .code(0)
        .stdout_has("was not pinned: sha256:");
}

/// `hashFiles` hashes the concatenated raw digests of the files.
fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
