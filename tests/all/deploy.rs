//! Deployments end to end: the real `kiln` binary rolling the HTTP test
//! service out on the `process` target, behind its proxy, while a bounded
//! loopback request loop watches every answer. Strategies and health
//! checks are the real WASI components: the bundled ones, and third-party
//! ones built by the test suite (`tests/plugins/guests`).

use std::time::Duration;

use crate::deploy_support::{
    Load, SLOW_CANARY, Teardown, assert_rolled_one_at_a_time, deploy, eventually, free_port,
    kill_9_mid_canary, pipeline, running, sample,
};
use crate::support::Kiln;

/// How long a test waits for something to happen before it fails.
const WAIT: Duration = Duration::from_secs(30);

fn versions(seen: &[(u16, String)]) -> Vec<&str> {
    let mut v: Vec<&str> = seen.iter().map(|(_, b)| b.as_str()).collect();
    v.dedup();
    v
}

#[test]
fn rolling_v1_to_v2_serves_every_request() {
    let port = free_port();
    let kiln = Kiln::new().pipeline(&pipeline(port, 3, "kiln/rolling@1", ""));
    let _down = Teardown(&kiln);
    deploy(&kiln, "v1", "good")
        .code(0)
        .stdout_has("promoted `web` to version `v1`");
    assert_eq!(running(&kiln, "v1"), 3);
    let load = Load::start(port, 50_000);
    let out = deploy(&kiln, "v2", "good");
    let seen = load.finish();
    out.code(0);
    assert_rolled_one_at_a_time(&out, &seen);
    assert!(sample(port, 20).iter().all(|(c, b)| *c == 200 && b == "v2"));
    assert_eq!((running(&kiln, "v1"), running(&kiln, "v2")), (0, 3));
    kiln.run_with(["deploy", "history", "web"])
        .code(0)
        .stdout_has("v2           v1           promoted");
}

#[test]
fn canary_v3_errors_roll_back_to_all_v1() {
    let port = free_port();
    let kiln = Kiln::new().pipeline(&pipeline(
        port,
        2,
        "{ uses: kiln/canary@1, with: { weights: '10,50,100', interval: 5s, max-error-rate: '10', min-requests: '5' } }",
        "",
    ));
    let _down = Teardown(&kiln);
    deploy(&kiln, "v1", "good").code(0);
    let load = Load::start(port, 50_000);
    let out = deploy(&kiln, "v3", "errors");
    let seen = load.finish();
    out.code(1)
        .stdout_has("→ set-weight 10%")
        .stdout_has("→ rollback: error rate 100.0% of `v3` at weight 10% (")
        .stdout_has("requests) is above max-error-rate 10%")
        .stdout_has("rolled back `web` to version `v1`");
    assert!(seen.iter().any(|(c, _)| *c == 500), "v3 got its 10 %");
    assert!(!out.stdout.contains("set-weight 50%"), "{out}");
    assert!(sample(port, 50).iter().all(|(c, b)| *c == 200 && b == "v1"));
    assert_eq!((running(&kiln, "v1"), running(&kiln, "v3")), (2, 0));
    kiln.run_with(["deploy", "history", "web"])
        .code(0)
        .stdout_has("rolled-back");
}

#[test]
fn v4_failing_health_never_receives_traffic() {
    let port = free_port();
    let kiln = Kiln::new().pipeline(&pipeline(port, 2, "kiln/rolling@1", ""));
    let _down = Teardown(&kiln);
    deploy(&kiln, "v1", "good").code(0);
    let load = Load::start(port, 50_000);
    let out = deploy(&kiln, "v4", "unhealthy");
    let seen = load.finish();
    out.code(1)
        .stdout_has("unhealthy (GET /healthz: 503 in ")
        .stdout_has("→ rollback: 0 of 1 instances of `v4` healthy after 3 checks");
    assert!(
        seen.iter().all(|(c, b)| *c == 200 && b == "v1"),
        "{:?}",
        versions(&seen)
    );
    assert_eq!(running(&kiln, "v4"), 0);
}

#[test]
fn blue_green_switches_atomically() {
    let port = free_port();
    let kiln = Kiln::new().pipeline(&pipeline(
        port,
        2,
        "{ uses: kiln/blue-green@1, with: { health-interval: 300ms } }",
        "",
    ));
    let _down = Teardown(&kiln);
    deploy(&kiln, "v1", "good").code(0);
    let load = Load::start(port, 50_000);
    deploy(&kiln, "v2", "good")
        .code(0)
        .stdout_has("→ set-weight 100%");
    let seen = load.finish();
    // Every answer is v1 until the switch and v2 after it: never a mix.
    assert_eq!(versions(&seen), ["v1", "v2"]);
    assert!(seen.iter().all(|(c, _)| *c == 200));
}

#[test]
fn manual_approval_waits_for_approve_and_reject_rolls_back() {
    let port = free_port();
    let kiln = Kiln::new().pipeline(&pipeline(
        port,
        1,
        "kiln/blue-green@1",
        "      approval: manual\n",
    ));
    let _down = Teardown(&kiln);
    kiln.run_with(["approve", "1", "promote"])
        .code(2)
        .stderr_has("error: run 1 has no approval gate waiting for an answer");
    // v1 is the first deployment: its gate is approved from here.
    let first = kiln
        .command(["run", "--var", "VERSION=v1"])
        .spawn()
        .unwrap();
    eventually("gate of run 1", WAIT, || {
        kiln.run_with(["approve", "1", "promote"]).status == Some(0)
    });
    assert!(first.wait_with_output().unwrap().status.success());

    let mut second = Kiln::spawn_with(&kiln, ["run", "--var", "VERSION=v2"]);
    eventually("gate of run 2", WAIT, || {
        kiln.run_with(["approve", "2", "nope"])
            .stderr
            .contains("waiting: `promote`")
    });
    // Paused before promotion: green (v2) serves, blue (v1) stays.
    assert!(sample(port, 10).iter().all(|(_, b)| b == "v2"));
    assert_eq!((running(&kiln, "v1"), running(&kiln, "v2")), (1, 1));
    assert!(second.try_wait().unwrap().is_none());
    kiln.run_with(["reject", "2", "promote"])
        .code(0)
        .stdout_is("gate `promote` of run 2 rejected\n");
    let out = second.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("approval `promote` was rejected"));
    assert!(sample(port, 10).iter().all(|(_, b)| b == "v1"));
    assert_eq!(running(&kiln, "v2"), 0);
}

#[test]
fn kill_9_during_a_canary_then_resume_rolls_back_cleanly() {
    let port = free_port();
    let kiln = Kiln::new().pipeline(&pipeline(port, 2, SLOW_CANARY, ""));
    let _down = Teardown(&kiln);
    kill_9_mid_canary(&kiln, port, WAIT);
    // The first canary step (50 %) runs one of the two replicas.
    assert_eq!(
        running(&kiln, "v2"),
        1,
        "instances outlive their controller"
    );
    let out = kiln.run_with(["deploy", "resume"]);
    out.code(1)
        .stdout_has("kiln stopped while it was running; rolling back")
        .stdout_has("rolled back `web` to version `v1`");
    assert!(sample(port, 20).iter().all(|(c, b)| *c == 200 && b == "v1"));
    assert_eq!((running(&kiln, "v1"), running(&kiln, "v2")), (2, 0));
    kiln.run_with(["deploy", "resume"])
        .code(0)
        .stdout_has("nothing to resume");
    kiln.run_with(["deploy", "history", "web"])
        .code(0)
        .stdout_has("kiln stopped during the rollout (resumed by `kiln deploy resume`)");
}

#[test]
fn resume_goes_on_without_a_recorded_health_check_that_changed() {
    // A crashed rollout must stay recoverable when its health check file
    // is no longer what the rollout used (changed, or gone): resume never
    // runs other bytes than those, says so, and rolls back on readiness.
    let port = free_port();
    let yaml = pipeline(port, 1, SLOW_CANARY, "").replace(
        "{ uses: kiln/http-health@1, with: { path: /healthz } }",
        "{ uses: ./always-healthy.wasm }",
    );
    let kiln = Kiln::new().pipeline(&yaml).bytes(
        "always-healthy.wasm",
        &std::fs::read(kiln_test_plugins::HEALTH).unwrap(),
    );
    let _down = Teardown(&kiln);
    kill_9_mid_canary(&kiln, port, WAIT);
    std::fs::write(
        kiln.path("always-healthy.wasm"),
        std::fs::read(kiln_test_plugins::NEEDY_HEALTH).unwrap(),
    )
    .unwrap();
    kiln.run_with(["deploy", "resume"])
        .code(1)
        .stderr_has("warning: cannot load the recorded health check: `./always-healthy.wasm` is no longer the component the rollout used (sha256:")
        .stderr_has("going on with readiness checks only")
        .stdout_has("rolled back `web` to version `v1`");
    assert!(sample(port, 10).iter().all(|(c, b)| *c == 200 && b == "v1"));
    assert_eq!((running(&kiln, "v1"), running(&kiln, "v2")), (1, 0));
}

#[test]
fn rollback_by_hand_returns_to_the_previous_version() {
    let port = free_port();
    let kiln = Kiln::new().pipeline(&pipeline(port, 1, "kiln/rolling@1", ""));
    let _down = Teardown(&kiln);
    kiln.run_with(["deploy", "rollback", "web"])
        .code(2)
        .stderr_has("error: service `web` has never been deployed here");
    deploy(&kiln, "v1", "good").code(0);
    deploy(&kiln, "v2", "good").code(0);
    kiln.run_with(["deploy", "rollback", "web"])
        .code(0)
        .stdout_has("rolling `web` back from `v2` to `v1`");
    assert!(sample(port, 10).iter().all(|(_, b)| b == "v1"));
    assert_eq!((running(&kiln, "v1"), running(&kiln, "v2")), (1, 0));
}

#[test]
fn a_docker_deploy_without_an_engine_fails_the_job_with_a_reason() {
    let kiln = Kiln::new()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .pipeline("jobs:\n  ship:\n    deploy: { target: docker, service: web, image: 'app:1' }\n");
    kiln.run_with(["run"])
        .code(1)
        .stdout_has("kiln: cannot reach the Docker engine at `unix:///nonexistent/docker.sock`: ")
        .stdout_has(
            "; start it (`sudo systemctl start docker`) or point `DOCKER_HOST` at a running engine",
        );
}

#[test]
fn a_third_party_strategy_and_health_check_drive_a_rollout() {
    let port = free_port();
    let yaml = pipeline(
        port,
        2,
        "{ uses: ./all-at-once.wasm, with: { label: go } }",
        "",
    )
    .replace(
        "{ uses: kiln/http-health@1, with: { path: /healthz } }",
        "{ uses: ./always-healthy.wasm }",
    );
    let kiln = Kiln::new()
        .pipeline(&yaml)
        .bytes(
            "all-at-once.wasm",
            &std::fs::read(kiln_test_plugins::ALL_AT_ONCE).unwrap(),
        )
        .bytes(
            "always-healthy.wasm",
            &std::fs::read(kiln_test_plugins::HEALTH).unwrap(),
        );
    let _down = Teardown(&kiln);
    deploy(&kiln, "v1", "good").code(0);
    let out = deploy(&kiln, "v2", "good");
    out.code(0)
        .stdout_has("with ./all-at-once.wasm (2 replicas)")
        .stdout_has("→ scale v2 to 2")
        .stdout_has(": healthy (ok)")
        // What the check wrote, after the instance it checked.
        .stdout_has("| looked at web-v2-")
        .stdout_has("→ set-weight 100%")
        .stdout_has("promoted `web` to version `v2`");
    assert!(sample(port, 10).iter().all(|(c, b)| *c == 200 && b == "v2"));
    // Both are pinned like any `uses:`; a changed component is refused.
    let lock = kiln.read("kiln.lock");
    assert!(lock.contains("./all-at-once.wasm"), "{lock}");
    assert!(lock.contains("./always-healthy.wasm"), "{lock}");
    std::fs::write(
        kiln.path("all-at-once.wasm"),
        std::fs::read(kiln_test_plugins::NOOP).unwrap(),
    )
    .unwrap();
    kiln.run_with(["run", "--locked", "--var", "VERSION=v3"])
        .code(2)
        .stderr_has("./all-at-once.wasm");
}

#[test]
fn a_health_check_needing_more_than_its_target_is_refused_at_its_reference() {
    // The host grants a health check only its target's address: a
    // declared network need is met, but one that also reads the workspace
    // (and a secret) could never work, so it is refused up front.
    let kiln = Kiln::new()
        .pipeline(concat!(
            "jobs:\n  ship:\n    deploy:\n      service: web\n      command: 'true'\n      version: '1'\n",
            "      health: { uses: ./needy-health.wasm }\n",
        ))
        .bytes(
            "needy-health.wasm",
            &std::fs::read(kiln_test_plugins::NEEDY_HEALTH).unwrap(),
        );
    kiln.run_with(["validate"])
        .code(2)
        .stderr_has("kiln.yml:7:23")
        .stderr_has(
            "plugin `./needy-health.wasm` needs read access to the workspace, but `deploy.health` is granted only the address of the instance it checks",
        )
        .stderr_has("use a check that needs no more than the network to its target");
    kiln.run_with(["run"])
        .code(2)
        .stderr_has("needs read access to the workspace");
}

#[test]
fn validate_leaves_a_remote_strategy_to_run_with_a_warning() {
    // `kiln validate` fetches nothing: a remote component is not an error,
    // it is checked when `kiln run` resolves it.
    let kiln = Kiln::new().pipeline(concat!(
        "jobs:\n  ship:\n    deploy:\n      service: web\n      command: 'true'\n      version: '1'\n",
        "      strategy: { uses: 'oci://127.0.0.1:1/strategies/fast:1' }\n",
    ));
    kiln.run_with(["validate"])
        .code(0)
        .stderr_has("plugin-not-fetched")
        .stderr_has("kiln.yml:7:")
        .stderr_has("is fetched, then checked, when `kiln run` resolves it");
}

#[test]
fn strategy_and_health_references_are_checked_before_anything_runs() {
    let kiln = Kiln::new().pipeline(concat!(
        "jobs:\n  ship:\n    deploy:\n      service: web\n      command: 'true'\n      version: '1'\n",
        "      strategy: { uses: kiln/canary@1, with: { wieghts: '10,100' } }\n",
        "      health: { uses: kiln/rolling@1 }\n",
    ));
    let out = kiln.run_with(["validate"]);
    out.code(2)
        .stderr_has("plugin `kiln/canary@1` has no input `wieghts`")
        .stderr_has("did you mean `weights`?")
        .stderr_has("kiln.yml:7:48")
        .stderr_has(
            "plugin `kiln/rolling@1` is a `deploy-strategy` component; `deploy.health` needs a `health-check`",
        )
        .stderr_has("kiln.yml:8:23");
    kiln.run_with(["run"])
        .code(2)
        .stderr_has("has no input `wieghts`");
    let kiln = Kiln::new().pipeline(
        "jobs:\n  ship:\n    deploy: { service: web, command: 'true', version: '1', strategy: ./missing.wasm }\n",
    );
    kiln.run_with(["run"])
        .code(2)
        .stderr_has("./missing.wasm")
        .stderr_has("kiln.yml:3:");
}

#[test]
fn simulate_prints_the_decisions_of_a_script() {
    let kiln = Kiln::new().file(
        "canary.json",
        r#"{"stable": "v1", "candidate": "v3", "replicas": 2,
            "params": {"weights": "10,100", "interval": "1s"},
            "traffic": [{"requests": 100, "errors": 40}]}"#,
    );
    let rollback = "rollback: error rate 40.0% of `v3` at weight 10% (40 of 100 requests) is above max-error-rate 5%";
    kiln.run_with(["deploy", "simulate", "canary.json", "--strategy", "kiln/canary@1"])
        .code(1)
        .stdout_is(&format!(
            "     0ms  scale v3 to 1\n     0ms  check-health\n     0ms  set-weight 10%\n     0ms  wait 1000ms\n\
             \x20 1000ms  {rollback}\nrolled back: {}\n",
            rollback.trim_start_matches("rollback: ")
        ));
    let kiln = kiln.file(
        "typo.json",
        r#"{"candidate": "v2", "replicas": 1, "params": {"wieghts": "10,100"}}"#,
    );
    kiln.run_with([
        "deploy",
        "simulate",
        "typo.json",
        "--strategy",
        "kiln/canary@1",
    ])
    .code(2)
    .stderr_has(
        "error: `typo.json`: strategy `kiln/canary@1` has no input `wieghts`; it takes `weights`",
    );
    let kiln = kiln.file(
        "bad.json",
        r#"{"candidate": "v2", "replicas": 1, "helth": []}"#,
    );
    kiln.run_with(["deploy", "simulate", "bad.json"])
        .code(2)
        .stderr_has("error: `bad.json` is not a valid simulation script: unknown field `helth`");
}

#[test]
fn a_taken_proxy_address_fails_the_job_and_says_why() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let kiln = Kiln::new().pipeline(&pipeline(port, 1, "kiln/rolling@1", ""));
    let _down = Teardown(&kiln);
    deploy(&kiln, "v1", "good").code(1).stdout_has(&format!(
        "kiln: the proxy of service `web` failed: it did not come up on 127.0.0.1:{port}: error: cannot listen on `127.0.0.1:{port}` caused by: Address already in use (os error 98)"
    ));
    assert_eq!(running(&kiln, "v1"), 0);
}

#[test]
fn secrets_reach_instances_and_never_the_log() {
    let port = free_port();
    let extra = "      x-unused: 1\n";
    let yaml = pipeline(port, 1, "kiln/rolling@1", extra).replace(
        "MODE: \"${MODE:-good}\" }",
        "MODE: \"${MODE:-good}\", TOKEN: \"${{ secrets.TOKEN }}\" }",
    );
    let kiln = Kiln::new().pipeline(&yaml);
    let _down = Teardown(&kiln);
    kiln.run_with(["run", "--var", "VERSION=v1", "--secret", "TOKEN=hunter2"])
        .code(0)
        .never_shows("hunter2");
    let pid = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == b"TOKEN=hunter2"))
        });
    assert!(pid.is_some(), "the instance got its secret");
}
