//! Deployments on the `docker` target end to end: the HTTP test service,
//! linked statically into a `FROM scratch` image built here (Docker has no
//! registry to pull from), rolled out by the real `kiln` as containers on
//! the local engine, behind kiln's proxy on loopback. Each test deploys a
//! service of its own name and counts its containers by their
//! `kiln.deploy.*` labels, so tests (and other test processes sharing the
//! engine) never see each other's.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::deploy_support::{
    Load, SLOW_CANARY, TeardownService, assert_rolled_one_at_a_time, deploy, free_port,
    kill_9_mid_canary, sample, static_service_binary,
};
use crate::support::Kiln;

/// How long a test waits for something to happen before it fails
/// (containers start slower than processes).
const WAIT: Duration = Duration::from_secs(60);

/// The test image's repository; tags `v1`, `v2` and `v3` are the same
/// image, told apart by `$VERSION` (the tag is the deployment's version).
const IMAGE: &str = "kiln-test/web";

/// Builds (or rebuilds, for a changed service) the test image, once per
/// test process.
fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let context = tempfile::tempdir().expect("temp dir");
        std::fs::copy(static_service_binary(), context.path().join("service"))
            .expect("copy the service");
        std::fs::write(
            context.path().join("Dockerfile"),
            "FROM scratch\nCOPY service /service\nENV LISTEN_HOST=0.0.0.0\nEXPOSE 8080\nENTRYPOINT [\"/service\"]\n",
        )
        .expect("Dockerfile");
        let mut build = Command::new("docker");
        build.args(["build", "-q"]);
        for tag in ["v1", "v2", "v3"] {
            build.args(["-t", &format!("{IMAGE}:{tag}")]);
        }
        let built = build.arg(context.path()).output().expect("docker build runs");
        assert!(
            built.status.success(),
            "docker build failed: {}",
            String::from_utf8_lossy(&built.stderr)
        );
    });
    IMAGE
}

/// A service name no other test or test process uses.
fn service(test: &str) -> String {
    format!("dk-{test}-{}", std::process::id())
}

/// A pipeline deploying `service` from the test image; the tag and mode
/// come from `--var VERSION=… --var MODE=…`. No `port:`: the image
/// exposes one.
fn pipeline(service: &str, port: u16, replicas: u32, strategy: &str) -> String {
    image();
    format!(
        r#"jobs:
  ship:
    deploy:
      target: docker
      service: {service}
      image: {IMAGE}:${{VERSION}}
      replicas: {replicas}
      env: {{ VERSION: "${{VERSION}}", MODE: "${{MODE:-good}}" }}
      readiness: {{ timeout: 10s }}
      strategy: {strategy}
      health: {{ uses: kiln/http-health@1, with: {{ path: /healthz }} }}
      proxy: {{ listen: "127.0.0.1:{port}" }}
"#
    )
}

/// Ids of the service's containers (`version`'s only, if given); with
/// `all`, stopped ones too.
fn containers(service: &str, version: Option<&str>, all: bool) -> Vec<String> {
    let mut ps = Command::new("docker");
    ps.args(["ps", "-q", "--no-trunc"]);
    if all {
        ps.arg("-a");
    }
    ps.args(["--filter", &format!("label=kiln.deploy.service={service}")]);
    if let Some(version) = version {
        ps.args(["--filter", &format!("label=kiln.deploy.version={version}")]);
    }
    let out = ps.output().expect("docker ps runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn running(service: &str, version: &str) -> usize {
    containers(service, Some(version), false).len()
}

/// `docker inspect --format TEMPLATE ID`, trimmed.
fn inspect(id: &str, template: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "--format", template, id])
        .output()
        .expect("docker inspect runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn docker_rolling_v1_to_v2_serves_every_request() {
    let name = service("rolling");
    let port = free_port();
    let kiln = Kiln::new().pipeline(&pipeline(&name, port, 3, "kiln/rolling@1"));
    let _down = TeardownService(&kiln, &name);
    deploy(&kiln, "v1", "good")
        .code(0)
        .stdout_has(&format!("promoted `{name}` to version `v1`"));
    let v1 = containers(&name, Some("v1"), false);
    assert_eq!(v1.len(), 3);

    // Hardened like a job container, published on loopback only, labelled.
    let one = &v1[0];
    assert_eq!(
        inspect(
            one,
            "{{.HostConfig.Privileged}} {{.HostConfig.Init}} {{.HostConfig.PidsLimit}} {{.HostConfig.SecurityOpt}}"
        ),
        "false true 1024 [no-new-privileges:true]"
    );
    assert_eq!(
        inspect(
            one,
            "{{(index (index .HostConfig.PortBindings \"8080/tcp\") 0).HostIp}}"
        ),
        "127.0.0.1"
    );
    assert_eq!(inspect(one, "{{len .Mounts}}"), "0", "no socket, no mounts");
    let state = std::fs::canonicalize(kiln.path(".kiln")).unwrap();
    assert_eq!(
        inspect(one, "{{index .Config.Labels \"kiln.state\"}}"),
        state.display().to_string()
    );
    assert!(
        inspect(one, "{{index .Config.Labels \"kiln.deploy.instance\"}}")
            .starts_with(&format!("{name}-v1-r1-"))
    );
    assert_eq!(
        inspect(one, "{{index .Config.Labels \"kiln.deploy.rollout\"}}"),
        "1"
    );
    assert!(inspect(one, "{{.Config.Env}}").contains("PORT=8080"));

    // Deployed containers belong to no run: `kiln gc` leaves them.
    kiln.run_with(["gc"]).code(0);
    assert_eq!(running(&name, "v1"), 3);

    let load = Load::start(port, 50_000);
    let out = deploy(&kiln, "v2", "good");
    let seen = load.finish();
    out.code(0);
    assert_rolled_one_at_a_time(&out, &seen);
    assert!(sample(port, 20).iter().all(|(c, b)| *c == 200 && b == "v2"));
    assert_eq!(containers(&name, Some("v1"), true).len(), 0, "v1 removed");
    assert_eq!(running(&name, "v2"), 3);
    // A stopped instance's log file holds what it wrote.
    let log = kiln.read(&format!(".kiln/deploy/logs/{name}-v1-r1-1.log"));
    assert_eq!(log, "v1 listening on 0.0.0.0:8080\n");
}

#[test]
fn docker_canary_v3_errors_roll_back_to_all_v1() {
    let name = service("canary");
    let port = free_port();
    let kiln = Kiln::new().pipeline(&pipeline(
        &name,
        port,
        2,
        "{ uses: kiln/canary@1, with: { weights: '10,50,100', interval: 5s, max-error-rate: '10', min-requests: '5' } }",
    ));
    let _down = TeardownService(&kiln, &name);
    deploy(&kiln, "v1", "good").code(0);
    let load = Load::start(port, 50_000);
    let out = deploy(&kiln, "v3", "errors");
    let seen = load.finish();
    out.code(1)
        .stdout_has("→ set-weight 10%")
        .stdout_has("→ rollback: error rate 100.0% of `v3` at weight 10% (")
        .stdout_has("requests) is above max-error-rate 10%")
        .stdout_has(&format!("rolled back `{name}` to version `v1`"));
    assert!(seen.iter().any(|(c, _)| *c == 500), "v3 got its 10 %");
    assert!(!out.stdout.contains("set-weight 50%"), "{out}");
    assert!(sample(port, 50).iter().all(|(c, b)| *c == 200 && b == "v1"));
    assert_eq!(running(&name, "v1"), 2);
    assert_eq!(
        containers(&name, Some("v3"), true).len(),
        0,
        "v3 containers are gone"
    );
}

#[test]
fn docker_kill_9_during_a_canary_then_resume_leaves_no_stray_containers() {
    let name = service("resume");
    let port = free_port();
    let kiln = Kiln::new().pipeline(&pipeline(&name, port, 2, SLOW_CANARY));
    let _down = TeardownService(&kiln, &name);
    kill_9_mid_canary(&kiln, port, WAIT);
    // The first canary step (50 %) runs one of the two replicas.
    assert_eq!(
        running(&name, "v2"),
        1,
        "containers outlive their controller"
    );
    // A container a dead kiln created but never recorded, as a kill between
    // Docker's create and the journal's write leaves.
    let state = std::fs::canonicalize(kiln.path(".kiln")).unwrap();
    let stray = Command::new("docker")
        .args(["create", "--label"])
        .arg(format!("kiln.state={}", state.display()))
        .args(["--label", &format!("kiln.deploy.service={name}")])
        .args(["--label", "kiln.deploy.version=v2"])
        .arg(format!("{IMAGE}:v2"))
        .output()
        .expect("docker create runs");
    assert!(
        stray.status.success(),
        "{}",
        String::from_utf8_lossy(&stray.stderr)
    );

    let out = kiln.run_with(["deploy", "resume"]);
    out.code(1)
        .stdout_has("kiln stopped while it was running; rolling back")
        .stdout_has(&format!("rolled back `{name}` to version `v1`"));
    assert!(sample(port, 20).iter().all(|(c, b)| *c == 200 && b == "v1"));
    assert_eq!(running(&name, "v1"), 2);
    assert_eq!(
        containers(&name, Some("v2"), true),
        Vec::<String>::new(),
        "no v2 container, recorded or stray, is left"
    );
    kiln.run_with(["deploy", "resume"])
        .code(0)
        .stdout_has("nothing to resume");

    kiln.run_with(["deploy", "stop", &name])
        .code(0)
        .stdout_has(&format!("stopped `{name}`: 2 instances and its proxy"));
    assert_eq!(containers(&name, None, true), Vec::<String>::new());
}

#[test]
fn docker_deploy_of_a_missing_image_fails_the_job_and_says_how_to_build_it() {
    let name = service("missing");
    let kiln = Kiln::new().pipeline(&format!(
        "jobs:\n  ship:\n    deploy: {{ target: docker, service: {name}, image: 'kiln-test/absent:1', port: 8080, proxy: {{ listen: '127.0.0.1:{}' }} }}\n",
        free_port()
    ));
    let _down = TeardownService(&kiln, &name);
    kiln.run_with(["run"])
        .code(1)
        .stdout_has("kiln: image `kiln-test/absent:1` is not present locally and pulling it failed (")
        .stdout_has(
            "build it (`docker build -t kiln-test/absent:1 .`) or load it (`docker load -i FILE.tar`) first",
        );
    kiln.run_with(["deploy", "history", &name])
        .code(0)
        .stdout_has(&format!("no rollouts of `{name}` recorded"));
}
