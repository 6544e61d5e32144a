//! `image:` jobs and steps, services, isolation and clean-up, against the
//! machine's real Docker engine. The test image is built here, once per
//! test process, from `FROM scratch` and Debian's static busybox.

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::support::Kiln;

/// The test image: busybox, nothing else.
pub const IMAGE: &str = "kiln-test/busybox:1";

/// Builds [`IMAGE`] unless the engine has it (idempotent, once per process).
pub fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let present = Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .output()
            .expect("the docker CLI runs");
        if present.status.success() {
            return;
        }
        let busybox = std::path::Path::new("/bin/busybox");
        assert!(
            busybox.is_file(),
            "/bin/busybox is missing: install Debian's `busybox-static` (.ci/run does)"
        );
        let context = tempfile::tempdir().expect("temp dir");
        let bin = context.path().join("bin");
        std::fs::create_dir(&bin).expect("bin dir");
        std::fs::copy(busybox, bin.join("busybox")).expect("copy busybox");
        let applets = Command::new(busybox)
            .arg("--list")
            .output()
            .expect("busybox --list");
        for applet in String::from_utf8_lossy(&applets.stdout).lines() {
            if applet != "busybox" {
                std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("applet link");
            }
        }
        docker_build(
            IMAGE,
            context.path(),
            "FROM scratch\nCOPY bin /bin\nENV PATH=/bin\n",
        );
    });
    IMAGE
}

/// Builds `tag` from `dockerfile` in the build context `dir`.
fn docker_build(tag: &str, dir: &std::path::Path, dockerfile: &str) {
    std::fs::write(dir.join("Dockerfile"), dockerfile).expect("Dockerfile");
    let built = Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(dir)
        .output()
        .expect("docker build runs");
    assert!(
        built.status.success(),
        "docker build of `{tag}` failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
}

/// The `kiln.state` label of a case's runs.
fn state_label(kiln: &Kiln) -> String {
    let dir = std::fs::canonicalize(kiln.path(".kiln")).expect("state dir exists");
    format!("label=kiln.state={}", dir.display())
}

/// Containers and networks labelled with this case's state directory.
fn labelled(kiln: &Kiln) -> Vec<String> {
    let filter = state_label(kiln);
    let mut found = Vec::new();
    for what in [
        &["ps", "-aq"][..],
        &["network", "ls", "-q"],
        &["volume", "ls", "-q"],
    ] {
        let out = Command::new("docker")
            .args(what)
            .args(["--filter", &filter])
            .output()
            .expect("docker runs");
        found.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| format!("{} {l}", what[0])),
        );
    }
    found
}

fn pipeline(yaml: &str) -> String {
    yaml.replace("IMAGE", image())
}

#[test]
fn a_job_container_keeps_files_and_processes_state_between_steps_and_is_hardened() {
    let kiln = Kiln::new()
        .pipeline(&pipeline(
            r#"
jobs:
  build:
    image: IMAGE
    env:
      TOKEN: ${{ secrets.TOKEN }}
      GREETING: hello
    steps:
      - id: first
        run: |
          echo "$GREETING" > /workspace/shared.txt
          echo in-container-fs > /state.txt
          echo "token=$TOKEN"
          echo "where=$KILN_WORKSPACE $(pwd)"
          echo "answer=42" >> "$KILN_OUTPUT"
      - run: |
          cat /state.txt /workspace/shared.txt
          echo "output=${{ steps.first.outputs.answer }}"
          grep -e NoNewPrivs -e 'Seccomp:' /proc/self/status
          cap=$(grep CapEff /proc/self/status | cut -f2)
          echo "sys_admin=$(( (0x$cap >> 21) & 1 ))"
          test ! -e /var/run/docker.sock && test ! -e /run/docker.sock && echo "no docker socket"
          echo "pid1=$(cat /proc/1/comm)"
          exit 7
  single:
    image: IMAGE
    steps:
      - run: |
          grep -e NoNewPrivs -e 'Seccomp:' /proc/self/status
          cap=$(grep CapEff /proc/self/status | cut -f2)
          echo "sys_admin=$(( (0x$cap >> 21) & 1 ))"
          test ! -e /var/run/docker.sock && test ! -e /run/docker.sock && echo "no docker socket"
          echo "pid1=$(cat /proc/1/comm)"
"#,
        ))
        .args(["run", "--secret", "TOKEN=hunter2"]);
    let out = kiln.run();
    out.code(1)
        .stdout_has("[build] token=***\n")
        .stdout_has("[build] where=/workspace /workspace\n")
        .stdout_has("[build] in-container-fs\n[build] hello\n")
        .stdout_has("[build] output=42\n")
        .stdout_has("[build] NoNewPrivs:\t1\n")
        .stdout_has("[build] Seccomp:\t2\n")
        .stdout_has("[build] sys_admin=0\n")
        .stdout_has("[build] no docker socket\n")
        .stdout_has("[build] pid1=docker-init\n")
        // The one-step path (the step is the container's main process).
        .stdout_has("[single] NoNewPrivs:\t1\n")
        .stdout_has("[single] Seccomp:\t2\n")
        .stdout_has("[single] sys_admin=0\n")
        .stdout_has("[single] no docker socket\n")
        .stdout_has("[single] pid1=docker-init\n")
        .stdout_has("step 2 failed (exit 7)")
        .never_shows("hunter2");
    assert_eq!(
        kiln.read("shared.txt"),
        "hello\n",
        "the workspace is the host's"
    );
    assert_eq!(
        labelled(&kiln),
        Vec::<String>::new(),
        "the job's container is removed"
    );
}

#[test]
fn a_step_image_runs_that_step_alone_in_a_container_beside_host_steps() {
    let kiln = Kiln::new()
        .pipeline(&pipeline(
            r#"
jobs:
  mixed:
    steps:
      - run: echo from-host > made-on-host.txt
      - id: boxed
        image: IMAGE
        working-directory: sub
        run: |
          cat ../made-on-host.txt
          echo "cwd=$(pwd)"
          case "$PATH" in *cargo*) echo "host PATH leaked: $PATH";; esac
          echo "seen=yes" >> "$KILN_OUTPUT"
      - run: echo "host again ${{ steps.boxed.outputs.seen }}"
"#,
        ))
        .file("sub/.keep", "")
        .args(["run"]);
    kiln.run()
        .code(0)
        .stdout_has("[mixed] from-host\n")
        .stdout_has("[mixed] cwd=/workspace/sub\n")
        .stdout_has("[mixed] host again yes\n")
        .never_shows("host PATH leaked");
    assert_eq!(labelled(&kiln), Vec::<String>::new());
}

#[test]
fn a_one_step_container_job_streams_all_its_output_and_its_exit_code() {
    // The step is the container's main process, attached before it starts
    // and removed after its exit is reported: every line arrives, on its
    // stream, the exit code is the script's, and nothing is left once
    // kiln has exited.
    let kiln = Kiln::new()
        .pipeline(&pipeline(
            r#"
jobs:
  loud:
    image: IMAGE
    steps:
      - run: |
          seq 1 3000
          echo to-stderr >&2
          exit 3
"#,
        ))
        .args(["run", "--json"]);
    let out = kiln.run();
    out.code(1);
    let events = out.json_lines();
    let lines = |stream: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["type"] == "output" && e["stream"] == stream)
            .map(|e| e["line"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let expected: Vec<String> = (1..=3000).map(|n| n.to_string()).collect();
    assert_eq!(lines("stdout"), expected, "{out}");
    assert_eq!(lines("stderr"), ["to-stderr"], "{out}");
    let finished = events
        .iter()
        .find(|e| e["type"] == "step_finished")
        .unwrap_or_else(|| panic!("no step_finished\n{out}"));
    assert_eq!(finished["exit_code"], 3, "{out}");
    assert_eq!(finished["result"], "failed", "{out}");
    assert_eq!(labelled(&kiln), Vec::<String>::new());
}

#[test]
fn a_retry_gets_a_fresh_container() {
    let kiln = Kiln::new()
        .pipeline(&pipeline(
            r#"
jobs:
  flaky:
    image: IMAGE
    retry: { max: 1, backoff: 0s }
    steps:
      - run: |
          if [ -e /workspace/tried ]; then
            test ! -e /dirty && echo "fresh container"
          else
            touch /workspace/tried /dirty
            exit 1
          fi
"#,
        ))
        .args(["run"]);
    kiln.run().code(0).stdout_has("[flaky] fresh container\n");
    assert_eq!(labelled(&kiln), Vec::<String>::new());
}

#[test]
fn a_retry_of_a_multi_step_job_gets_a_fresh_job_container() {
    let kiln = Kiln::new()
        .pipeline(&pipeline(
            r#"
jobs:
  flaky:
    image: IMAGE
    retry: { max: 1, backoff: 0s }
    steps:
      - run: |
          test ! -e /marker
          echo "attempt $(cat /workspace/attempts 2>/dev/null | wc -l): no marker"
          touch /marker
          echo x >> /workspace/attempts
      - run: |
          test -e /marker
          if [ "$(wc -l < /workspace/attempts)" = 1 ]; then exit 1; fi
          echo "second attempt passed"
"#,
        ))
        .args(["run"]);
    kiln.run()
        .code(0)
        .stdout_has("[flaky] attempt 0: no marker\n")
        // Step 1 of attempt 2 found no marker: the container is new.
        .stdout_has("[flaky] attempt 1: no marker\n")
        .stdout_has("[flaky] second attempt passed\n");
    assert_eq!(labelled(&kiln), Vec::<String>::new());
}

/// A second image, differing from [`image`] by `/which-image`.
fn second_image() -> &'static str {
    const SECOND: &str = "kiln-test/busybox:2";
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let context = tempfile::tempdir().expect("temp dir");
        std::fs::write(context.path().join("which-image"), "second\n").expect("file");
        docker_build(
            SECOND,
            context.path(),
            &format!("FROM {}\nCOPY which-image /which-image\n", image()),
        );
    });
    SECOND
}

#[test]
fn a_step_image_overrides_the_job_image_and_an_unused_job_image_is_not_needed() {
    let yaml = pipeline(
        r#"
jobs:
  both:
    image: IMAGE
    steps:
      - run: |
          cat /which-image 2>/dev/null || echo "step 1: job image"
      - image: SECOND
        run: |
          echo "step 2: $(cat /which-image)"
      - run: |
          echo "step 3: $(cat /which-image 2>/dev/null || echo job image)"
  only-step:
    image: kiln-test/absent:1
    container: { pull: never }
    steps:
      - image: SECOND
        run: |
          echo "only step: $(cat /which-image)"
"#,
    )
    .replace("SECOND", second_image());
    let kiln = Kiln::new().pipeline(&yaml).args(["run"]);
    kiln.run()
        .code(0)
        .stdout_has("[both] step 1: job image\n")
        .stdout_has("[both] step 2: second\n")
        .stdout_has("[both] step 3: job image\n")
        .stdout_has("[only-step] only step: second\n");
    assert_eq!(labelled(&kiln), Vec::<String>::new());
}

#[test]
fn shell_is_honoured_in_a_job_container_and_in_a_one_step_container() {
    let kiln = Kiln::new()
        .pipeline(&pipeline(
            r#"
jobs:
  execs:
    image: IMAGE
    steps:
      - shell: awk -f
        run: 'BEGIN { print "awk ran as an exec" }'
      - run: echo "sh again"
  one:
    image: IMAGE
    steps:
      - shell: awk -f
        run: 'BEGIN { print "awk ran as the main process" }'
"#,
        ))
        .args(["run"]);
    kiln.run()
        .code(0)
        .stdout_has("[execs] awk ran as an exec\n")
        .stdout_has("[execs] sh again\n")
        .stdout_has("[one] awk ran as the main process\n");
    assert_eq!(labelled(&kiln), Vec::<String>::new());
}

#[test]
fn a_timed_out_container_step_that_traps_sigterm_is_killed_after_the_grace() {
    let kiln = Kiln::new()
        .pipeline(&pipeline(
            r#"
jobs:
  stubborn:
    image: IMAGE
    timeout: 3s
    steps:
      - run: echo "a first step, so the next one is an exec"
      - run: &trap |
          trap 'echo got TERM' TERM
          echo trapping
          while :; do sleep 1 || true; done
  alone:
    image: IMAGE
    timeout: 3s
    steps:
      - run: *trap
"#,
        ))
        .args(["run", "--grace", "3s", "--jobs", "2"]);
    let started = Instant::now();
    let out = kiln.run();
    let took = started.elapsed();
    out.code(1)
        .stdout_has("[stubborn] trapping\n")
        .stdout_has("[stubborn] got TERM\n")
        .stdout_has("[alone] trapping\n")
        .stdout_has("[alone] got TERM\n")
        .stdout_has("step timed out; its processes were stopped");
    for job in ["stubborn ", "alone "] {
        let summary = out
            .stdout
            .lines()
            .find(|l| l.starts_with(job))
            .unwrap_or_default();
        assert!(
            summary.contains("timed out"),
            "job result: {summary:?}\n{out}"
        );
    }
    // The steps ignore SIGTERM: only the SIGKILL after the grace ends
    // them, so the run cannot be shorter than timeout + grace.
    assert!(
        took >= Duration::from_secs(3 + 3),
        "took {took:?}: the grace was not waited\n{out}"
    );
    assert!(took < Duration::from_secs(25), "took {took:?}");
    assert_eq!(labelled(&kiln), Vec::<String>::new());
}

/// Starts a long container job and waits until its step printed `napping`.
fn start_napping(kiln: &Kiln) -> std::process::Child {
    let mut child = kiln.spawn();
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    // The step's own output, not its `▸ echo napping` header.
    while line.trim_end() != "[nap] napping" {
        line.clear();
        assert!(
            stdout.read_line(&mut line).expect("read") > 0,
            "kiln closed stdout early"
        );
    }
    // Keep draining so kiln never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    child
}

const NAPPER: &str = r#"
jobs:
  nap:
    image: IMAGE
    services:
      side:
        image: IMAGE
        command: [sleep, "300"]
    steps:
      - run: |
          echo napping
          sleep 300
"#;

#[test]
fn ctrl_c_during_a_container_job_leaves_no_container_or_network() {
    let kiln = Kiln::new()
        .pipeline(&pipeline(NAPPER))
        .args(["run", "--grace", "1s"]);
    let mut child = start_napping(&kiln);
    assert_eq!(labelled(&kiln).len(), 3, "job container, service, network");
    let running = Command::new("docker")
        .args(["ps", "-q", "--filter", &state_label(&kiln)])
        .output()
        .expect("docker ps");
    let ids: Vec<String> = String::from_utf8_lossy(&running.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), 2, "job container and service run");
    let labels = Command::new("docker")
        .args([
            "inspect",
            "-f",
            r#"{{index .Config.Labels "kiln.run"}} {{index .Config.Labels "kiln.job"}}"#,
        ])
        .args(&ids)
        .output()
        .expect("docker inspect");
    assert_eq!(String::from_utf8_lossy(&labels.stdout), "1 nap\n1 nap\n");
    let pid = Pid::from_raw(child.id() as i32).expect("pid");
    kill_process(pid, Signal::INT).expect("SIGINT");
    let status = child.wait().expect("kiln exits");
    assert_eq!(status.code(), Some(1));
    assert_eq!(labelled(&kiln), Vec::<String>::new());
}

#[test]
fn kill_9_during_a_container_job_then_kiln_gc_removes_everything_labelled() {
    let kiln = Kiln::new().pipeline(&pipeline(NAPPER)).args(["run"]);
    let mut child = start_napping(&kiln);
    let pid = Pid::from_raw(child.id() as i32).expect("pid");
    kill_process(pid, Signal::KILL).expect("SIGKILL");
    child.wait().expect("kiln is gone");
    let left = labelled(&kiln);
    assert_eq!(left.len(), 3, "a killed kiln cannot clean up: {left:?}");
    let scratch = scratch_dirs(child.id() as i32);
    assert_eq!(scratch.len(), 1, "the killed kiln's /kiln scratch is left");
    kiln.run_with(["gc"])
        .code(0)
        .stdout_is("removed 2 containers, 1 network and 0 volumes left by run #1\n");
    assert_eq!(labelled(&kiln), Vec::<String>::new());
    assert!(!scratch[0].exists(), "gc removes {}", scratch[0].display());
    kiln.run_with(["gc"])
        .code(0)
        .stdout_is("nothing to remove: no containers, networks or volumes of finished runs\n");
}

/// The scratch directories (step scripts, `/kiln`) of kiln process `pid`.
fn scratch_dirs(pid: i32) -> Vec<std::path::PathBuf> {
    let prefix = format!("kiln-docker-{pid}-");
    std::fs::read_dir("/dev/shm")
        .expect("/dev/shm")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

#[test]
fn a_service_is_reachable_by_name_once_healthy() {
    let kiln = Kiln::new()
        .pipeline(&pipeline(
            r#"
jobs:
  web-test:
    image: IMAGE
    services:
      web:
        image: IMAGE
        env: { BODY: served-by-web }
        command: [sh, -c, 'mkdir -p /srv && echo "$BODY" > /srv/index.html && exec httpd -f -p 80 -h /srv']
        health: { run: 'wget -q -O- http://127.0.0.1/', interval: 200ms, retries: 50 }
    steps:
      - run: wget -q -O- http://web/
"#,
        ))
        .args(["run"]);
    kiln.run().code(0).stdout_has("[web-test] served-by-web\n");
    assert_eq!(labelled(&kiln), Vec::<String>::new());
}

#[test]
fn an_unhealthy_service_fails_the_job_with_its_last_log_lines() {
    let kiln = Kiln::new()
        .pipeline(&pipeline(
            r#"
jobs:
  needs-db:
    image: IMAGE
    services:
      db:
        image: IMAGE
        command: [sh, -c, 'echo "db: cannot open data dir"; exec sleep 300']
        health: { run: 'echo probe-says-no; exit 1', interval: 100ms, retries: 2 }
    steps:
      - run: echo never runs
"#,
        ))
        .args(["run"]);
    let out = kiln.run();
    out.code(1)
        .stdout_has("service `db` is unhealthy: its health check failed")
        .stdout_has("last health check said: probe-says-no")
        .stdout_has("db: cannot open data dir");
    assert!(
        !out.stdout.contains("never runs\n[") && !out.stdout.contains("] never runs"),
        "{out}"
    );
    assert_eq!(labelled(&kiln), Vec::<String>::new());
}

#[test]
fn a_fork_bomb_and_a_memory_hog_fail_on_their_limits_and_nothing_else_does() {
    let kiln = Kiln::new()
        .pipeline(&pipeline(
            r#"
jobs:
  forks:
    image: IMAGE
    resources: { pids: 32 }
    steps:
      - run: |
          mkdir -p /tmp && mkfifo /tmp/tick
          ( i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; echo "started all 200" ) || echo "the bomb hit the limit"
          echo > /workspace/bomb-started
          # Hold the pids (builtins only: no fork is left) until the
          # neighbour has done its work beside the bomb.
          n=0
          until [ -e /workspace/neighbour-done ] || [ $n -ge 60 ]; do
            read -t 1 x <> /tmp/tick || true
            n=$((n+1))
          done
          exit 1
  hog:
    image: IMAGE
    resources: { memory: 16m }
    steps:
      - run: dd if=/dev/zero of=/dev/null bs=64M count=1
  neighbour:
    image: IMAGE
    timeout: 60s
    steps:
      - run: |
          until [ -e /workspace/bomb-started ]; do sleep 0.1; done
          sleep 1
          echo alive > /workspace/neighbour.txt
          echo "neighbour forks fine during the bomb"
          touch /workspace/neighbour-done
  late-host:
    timeout: 60s
    steps:
      - run: |
          until [ -e bomb-started ]; do sleep 0.1; done
          sh -c 'echo "host forks fine after the bomb started"'
  bystander:
    steps:
      - run: echo "host is fine"
"#,
        ))
        .args(["run", "--jobs", "5"]);
    let out = kiln.run();
    out.code(1)
        .stdout_has("[bystander] host is fine\n")
        .stdout_has("can't fork")
        .stdout_has("[forks] the bomb hit the limit\n")
        .stdout_has("[neighbour] neighbour forks fine during the bomb\n")
        .stdout_has("[late-host] host forks fine after the bomb started\n")
        .stdout_has("exit 137")
        .stdout_has("the memory limit");
    assert!(!out.stdout.contains("started all 200"), "{out}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    let result = |job: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("{job} ")))
            .map(|l| l.split_whitespace().nth(1).unwrap_or_default().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(result("forks"), "failed", "{out}");
    assert_eq!(result("hog"), "failed", "{out}");
    assert_eq!(result("neighbour"), "success", "{out}");
    assert_eq!(result("late-host"), "success", "{out}");
    assert_eq!(result("bystander"), "success", "{out}");
    assert_eq!(kiln.read("neighbour.txt"), "alive\n");
    assert_eq!(labelled(&kiln), Vec::<String>::new());
}

#[test]
fn a_missing_image_names_itself_and_how_to_provide_it() {
    let kiln = Kiln::new()
        .pipeline(
            "jobs:\n  j:\n    image: kiln-test/absent:1\n    container: { pull: never }\n    steps:\n      - run: 'true'\n",
        )
        .args(["run"]);
    kiln.run().code(1).stdout_has(
        "image `kiln-test/absent:1` is not present locally and `pull: never` forbids pulling it; build it (`docker build -t kiln-test/absent:1 .`) or load it (`docker load -i FILE.tar`) first",
    );
}

#[test]
fn validate_check_images_reports_present_and_missing_images_without_pulling() {
    let kiln = Kiln::new().pipeline(&pipeline(
        "jobs:\n  a:\n    image: IMAGE\n    steps: [run: 'true']\n  b:\n    steps:\n      - image: kiln-test/absent:1\n        run: 'true'\n",
    ));
    kiln.run_with(["validate", "--check-images"])
        .code(2)
        .stdout_has(&format!("✓ image `{IMAGE}` is present (job `a`)\n"))
        .stderr_has("error: image `kiln-test/absent:1` (step 1 of job `b`) is not present locally; build it (`docker build -t kiln-test/absent:1 .`) or load it (`docker load -i FILE.tar`)\n");
}

#[test]
fn without_docker_host_jobs_run_and_an_image_job_fails_with_one_clear_error() {
    let kiln = Kiln::new()
        .pipeline(
            "jobs:\n  host:\n    steps: [run: echo host works]\n  boxed:\n    image: kiln-test/busybox:1\n    steps: [run: 'true']\n",
        )
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["run"]);
    let out = kiln.run();
    out.code(1)
        .stdout_has("[host] host works\n")
        .stdout_has("cannot reach the Docker engine at `unix:///nonexistent/docker.sock`")
        .stdout_has(
            "start it (`sudo systemctl start docker`) or point `DOCKER_HOST` at a running engine",
        );
    // A pipeline without containers never talks to Docker.
    Kiln::new()
        .pipeline("jobs:\n  host:\n    steps: [run: echo fine]\n")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["run"])
        .run()
        .code(0)
        .stdout_has("[host] fine\n");
}

#[test]
fn an_image_that_cannot_be_pulled_says_why_and_how_to_provide_it() {
    // No registry is reachable here, so the default `if-missing` pull fails.
    let kiln = Kiln::new()
        .pipeline("jobs:\n  j:\n    image: kiln-test/absent:1\n    steps: [run: 'true']\n")
        .args(["run"]);
    let out = kiln.run();
    out.code(1)
        .stdout_has("image `kiln-test/absent:1` is not present locally and pulling it failed (")
        .stdout_has("build it (`docker build -t kiln-test/absent:1 .`) or load it (`docker load -i FILE.tar`) first");
}

#[test]
fn a_container_refuses_a_working_directory_outside_the_workspace_and_a_docker_socket_bind() {
    let kiln = Kiln::new()
        .pipeline(&pipeline(
            r#"
jobs:
  outside:
    image: IMAGE
    steps:
      - working-directory: ..
        run: 'true'
  socket:
    steps:
      - image: IMAGE
        run: 'true'
    container:
      volumes: ["./engine:/engine"]
"#,
        ))
        .args(["run"]);
    std::os::unix::fs::symlink("/var/run/docker.sock", kiln.path("engine")).expect("symlink");
    let out = kiln.run();
    out.code(1)
        .stdout_has("is outside the workspace, which is all a container sees")
        .stdout_has("kiln never gives a container the Docker socket (`");
    assert_eq!(labelled(&kiln), Vec::<String>::new());
}

#[test]
fn a_service_that_exits_fails_the_job_with_its_logs() {
    let kiln = Kiln::new()
        .pipeline(&pipeline(
            r#"
jobs:
  j:
    services:
      broken:
        image: IMAGE
        command: [sh, -c, 'echo "config file missing"; exit 3']
    steps: [run: echo never]
"#,
        ))
        .args(["run"]);
    kiln.run()
        .code(1)
        .stdout_has("service `broken` exited with code 3 before it was ready")
        .stdout_has("config file missing");
    assert_eq!(labelled(&kiln), Vec::<String>::new());
}

#[test]
fn check_images_and_gc_name_the_engine_they_could_not_reach() {
    let kiln = Kiln::new()
        .pipeline("jobs:\n  a:\n    image: kiln-test/busybox:1\n    steps: [run: 'true']\n")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    kiln.run_with(["validate", "--check-images"])
        .code(2)
        .stderr_has("error: cannot reach the Docker engine at `unix:///nonexistent/docker.sock`");
    kiln.run_with(["run"]).code(1);
    kiln.run_with(["gc"])
        .code(2)
        .stderr_has("error: cannot reach the Docker engine at `unix:///nonexistent/docker.sock`");
}

#[test]
fn the_next_container_run_sweeps_what_a_killed_run_left() {
    let kiln = Kiln::new().pipeline(&pipeline(NAPPER)).args(["run"]);
    let mut child = start_napping(&kiln);
    let pid = Pid::from_raw(child.id() as i32).expect("pid");
    kill_process(pid, Signal::KILL).expect("SIGKILL");
    child.wait().expect("kiln is gone");
    assert_eq!(labelled(&kiln).len(), 3, "a killed kiln cannot clean up");
    let next = pipeline("jobs:\n  quick:\n    image: IMAGE\n    steps: [run: 'true']\n");
    std::fs::write(kiln.path("next.yml"), next).expect("write next.yml");
    kiln.run_with(["run", "next.yml"]).code(0);
    assert_eq!(labelled(&kiln), Vec::<String>::new());
}

#[test]
fn user_read_only_root_and_no_network_are_applied_to_the_job_container() {
    let kiln = Kiln::new()
        .pipeline(&pipeline(
            r#"
jobs:
  locked:
    image: IMAGE
    container: { user: "1234:1234", read-only: true, network: none }
    steps:
      - run: echo "uid=$(id -u)"
      - run: |
          touch /etc/x 2>/dev/null || echo "root is read-only"
          touch /tmp/x && echo "tmp is writable"
          echo "interfaces=$(ls /sys/class/net | tr '\n' ' ')"
"#,
        ))
        .args(["run"]);
    // The workspace must be enterable by uid 1234.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(kiln.dir(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    kiln.run()
        .code(0)
        .stdout_has("[locked] uid=1234\n")
        .stdout_has("[locked] root is read-only\n")
        .stdout_has("[locked] tmp is writable\n")
        .stdout_has("[locked] interfaces=lo \n");
    assert_eq!(labelled(&kiln), Vec::<String>::new());
}

#[test]
fn a_bind_of_a_directory_above_the_docker_socket_is_refused_by_validate() {
    Kiln::new()
        .pipeline(&pipeline(
            "jobs:\n  a:\n    image: IMAGE\n    container:\n      volumes: [\"/var/run:/x\"]\n    steps: [run: 'true']\n",
        ))
        .args(["validate"])
        .run()
        .code(2)
        .stderr_has("  × kiln never gives a container the Docker socket (`/var/run` contains `/var/run/docker.sock`)\n   ╭─[kiln.yml:5:17]\n")
        .stderr_has("  help: bind only the directories the job needs (e.g. `./cache:/cache`); a container that reaches the Docker socket controls the host");
}

#[test]
fn a_bind_that_reaches_the_docker_socket_through_a_symlink_is_refused_at_run_time() {
    let kiln = Kiln::new()
        .pipeline(&pipeline(
            r#"
jobs:
  parent:
    image: IMAGE
    container:
      volumes: ["./up:/x"]
    steps:
      - run: test -e /x/docker.sock && echo "SOCKET" "EXPOSED"
"#,
        ))
        .args(["run"]);
    // Harmless-looking to `validate`: only the run-time check resolves it.
    std::os::unix::fs::symlink("/var/run", kiln.path("up")).expect("symlink");
    kiln.run_with(["validate"]).code(0);
    let ws = std::fs::canonicalize(kiln.dir()).expect("workspace");
    kiln.run()
        .code(1)
        .stdout_has(&format!(
            "kiln never gives a container the Docker socket (`{}/./up` is `/run`, which contains `/run/docker.sock`); bind only the directories the job needs",
            ws.display()
        ))
        .never_shows("SOCKET EXPOSED");
    assert_eq!(labelled(&kiln), Vec::<String>::new());
}

/// A job whose service never becomes healthy (its check fails forever,
/// and Docker would take ~1000 s to give up).
const NEVER_HEALTHY: &str = r#"
jobs:
  waits:
    image: IMAGE
    TIMEOUT
    services:
      db:
        image: IMAGE
        command: [sleep, "300"]
        health: { run: 'exit 1', interval: 1s, timeout: 1s, retries: 1000 }
    steps:
      - run: echo "never runs"
"#;

#[test]
fn a_job_timeout_stops_the_wait_for_a_service_and_removes_it() {
    let kiln = Kiln::new()
        .pipeline(&pipeline(NEVER_HEALTHY).replace("TIMEOUT", "timeout: 3s"))
        .args(["run"]);
    let started = Instant::now();
    let out = kiln.run();
    let took = started.elapsed();
    out.code(1).stdout_has(
        "the job timed out before its containers and services were ready; what was created is removed",
    );
    let summary = out
        .stdout
        .lines()
        .find(|l| l.starts_with("waits "))
        .unwrap_or_default();
    assert!(
        summary.contains("timed out"),
        "job result: {summary:?}\n{out}"
    );
    assert!(!out.stdout.contains("] never runs"), "{out}");
    assert!(took < Duration::from_secs(20), "took {took:?}\n{out}");
    assert_eq!(labelled(&kiln), Vec::<String>::new());
}

#[test]
fn ctrl_c_during_the_wait_for_a_service_cancels_the_run_and_removes_it() {
    let kiln = Kiln::new()
        .pipeline(&pipeline(NEVER_HEALTHY).replace("TIMEOUT", ""))
        .args(["run"]);
    let mut child = kiln.spawn();
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).expect("read");
        text
    });
    // Wait until the service is there (and so kiln waits for its health).
    let started = Instant::now();
    while !kiln.path(".kiln").exists() || !labelled(&kiln).iter().any(|l| l.starts_with("ps ")) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no service started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = Pid::from_raw(child.id() as i32).expect("pid");
    kill_process(pid, Signal::INT).expect("SIGINT");
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if stopped.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("kiln ignored Ctrl-C while waiting for a service");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = reader.join().expect("reader");
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("the run was cancelled before its containers and services were ready"),
        "{stdout}"
    );
    assert_eq!(labelled(&kiln), Vec::<String>::new());
}
