//! `uses:` steps end to end: real components (built from
//! `tests/plugins/guests` by `kiln-test-plugins`), the real sandbox.

use std::io::Read;
use std::path::Path;

use kiln_test_plugins as plugins;

use crate::support::Kiln;

/// A case with `plugin` copied into its directory as `name`, and a private
/// compile cache (`KILN_HOME`) shared by the suite so each component is
/// compiled once.
fn with_plugins(plugins: &[(&str, &str)]) -> Kiln {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kiln-home");
    let kiln = Kiln::new().env("KILN_HOME", home.to_str().unwrap());
    for (name, path) in plugins {
        let target = kiln.path(name);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(path, target).expect("copy plugin");
    }
    kiln
}

#[test]
fn plugin_outputs_inputs_defaults_secrets_and_env_reach_the_pipeline() {
    let kiln = with_plugins(&[("echo.wasm", plugins::ECHO)])
        .pipeline(
            "jobs:\n  greet:\n    steps:\n      - id: e\n        uses: ./echo.wasm\n        with: { message: \"${{ vars.who }}\" }\n        \
             permissions: { fs: write, secrets: [TOKEN], env: [SUFFIX] }\n      - run: echo \"step saw ${{ steps.e.outputs.said }}\"\n  \
             after:\n    needs: [greet]\n    steps:\n      - run: echo \"job saw ${{ needs.greet.outputs.said }}\"\n",
        )
        .env("SUFFIX", "!")
        .env("NOT_GRANTED", "x");
    let out = kiln.run_with([
        "run",
        "--var",
        "who=world",
        "--secret",
        "TOKEN=s3cr3t-value",
    ]);
    out.code(0)
        .stdout_has("[greet] hello, world!\n")
        .stdout_has("[greet] warning: careful\n")
        .stdout_has("[greet] progress 100%: almost\n")
        .stdout_has("[greet] token is ***\n")
        .stdout_has("[greet] stdout line from ./echo.wasm in greet\n")
        .stdout_has("[greet] step saw hello, world!\n")
        .stdout_has("[after] job saw hello, world!\n")
        .never_shows("s3cr3t-value");
    assert_eq!(kiln.read("echo.txt"), "hello, world!");
}

#[test]
fn a_plugin_puts_and_gets_artifacts_in_the_runs_store() {
    // One job at a time: every echo step writes echo.txt in the shared workspace.
    let grants = "permissions: { fs: write, secrets: [TOKEN], env: [SUFFIX] }";
    let kiln = with_plugins(&[("echo.wasm", plugins::ECHO)]).pipeline(&format!(
        "jobs:\n  up:\n    steps:\n      - id: e\n        uses: ./echo.wasm\n        with: {{ message: \"upload:report\" }}\n        {grants}\n      \
         - run: echo \"put ${{{{ steps.e.outputs.digest }}}}\"\n  down:\n    needs: [up]\n    steps:\n      - id: e\n        uses: ./echo.wasm\n        \
         with: {{ message: \"download:report\" }}\n        {grants}\n      - run: echo \"got ${{{{ steps.e.outputs.digest }}}}\"\n  \
         missing:\n    needs: [down]\n    steps:\n      - uses: ./echo.wasm\n        with: {{ message: \"download:nothing\" }}\n        {grants}\n"
    ));
    let out = kiln.run_with(["run"]);
    out.code(1);
    let stdout = &out.stdout;
    let put = stdout
        .lines()
        .find_map(|l| l.strip_prefix("[up] put "))
        .expect("the upload's digest")
        .to_owned();
    assert!(put.starts_with("sha256:") && put.len() == 71, "{put}");
    assert!(stdout.contains(&format!("[down] got {put}\n")), "{stdout}");
    assert_eq!(kiln.read("got.txt"), "hello, upload:report");
    assert!(
        stdout.contains(
            "[missing] kiln: plugin `./echo.wasm` failed: ArtifactError::NotFound(\"run 1 has no artifact `nothing`\")"
        ),
        "{stdout}"
    );
    kiln.run_with(["artifacts", "list"])
        .code(0)
        .stdout_has("report");
}

#[test]
fn a_plugin_error_fails_its_step_with_the_plugins_message() {
    with_plugins(&[("echo.wasm", plugins::ECHO)])
        .pipeline(
            "jobs:\n  a:\n    steps:\n      - uses: ./echo.wasm\n        with: { message: fail }\n        \
             permissions: { fs: write, secrets: [TOKEN], env: [SUFFIX] }\n",
        )
        .args(["run"])
        .run()
        .code(1)
        .stdout_has("[a] kiln: plugin `./echo.wasm` failed: asked to fail\n");
}

/// One job per attack; each fails alone, with its own message, and the
/// well-behaved jobs beside them succeed.
#[test]
fn hostile_plugins_fail_only_their_own_step() {
    let job = |name: &str, with: &str| {
        // Only the loop has a timeout: the others must fail on their own.
        let timeout = if name == "spin" {
            "\n        timeout: 1s"
        } else {
            ""
        };
        format!(
            "  {name}:\n    steps:\n      - id: s\n        uses: ./hostile.wasm{timeout}\n        with: {with}\n      - if: always()\n        run: echo \"{name} -> ${{{{ steps.s.outputs.result }}}}\"\n"
        )
    };
    let mut yaml = String::from("jobs:\n");
    for (name, with) in [
        ("spin", "{ mode: loop }"),
        ("hoard", "{ mode: memory }"),
        ("recurse", "{ mode: recursion }"),
        ("panic", "{ mode: panic }"),
        ("passwd", "{ mode: read, target: /etc/passwd }"),
        (
            "dotdot",
            "{ mode: read, target: /workspace/../../../etc/passwd }",
        ),
        ("symlink", "{ mode: read, target: /workspace/link }"),
        ("inside", "{ mode: read, target: /workspace/inside.txt }"),
        ("write", "{ mode: write, target: /workspace/pwned }"),
        ("connect", "{ mode: connect, target: \"127.0.0.1:9\" }"),
        ("lookup", "{ mode: lookup, target: \"localhost:80\" }"),
        ("secret", "{ mode: secret, target: TOKEN }"),
        ("env", "{ mode: env }"),
    ] {
        yaml.push_str(&job(name, with));
    }
    let kiln = with_plugins(&[("hostile.wasm", plugins::HOSTILE)])
        .pipeline(&yaml)
        .file("inside.txt", "hello\n")
        .env("KILN_TEST_LEAK", "leaked-value");
    std::os::unix::fs::symlink("/etc/passwd", kiln.path("link")).unwrap();
    let out = kiln.run_with(["run", "--secret", "TOKEN=s3cr3t-value", "--jobs", "4"]);
    out.code(1)
        .stdout_has("[spin] kiln: step timed out; the plugin was stopped\n")
        .stdout_has("[hoard] kiln: plugin `./hostile.wasm` failed: the plugin exceeded its memory limit of 256 MiB\n")
        .stdout_has("[recurse] kiln: plugin `./hostile.wasm` failed: the plugin accessed memory out of bounds (in Rust and C guests usually a stack overflow from deep recursion)\n")
        .stdout_has("[panic] hostile plugin panics on purpose\n")
        .stdout_has("[panic] kiln: plugin `./hostile.wasm` failed: the plugin panicked or aborted (wasm `unreachable` executed; its stderr above says why)\n")
        .stdout_has("[passwd] kiln: plugin `./hostile.wasm` failed: cannot read `/etc/passwd`: No such file or directory (os error 44)\n")
        .stdout_has("[dotdot] kiln: plugin `./hostile.wasm` failed: cannot read `/workspace/../../../etc/passwd`: Operation not permitted (os error 63)\n")
        .stdout_has("[symlink] kiln: plugin `./hostile.wasm` failed: cannot read `/workspace/link`: Operation not permitted (os error 63)\n")
        .stdout_has("[inside] inside -> read 6 bytes of /workspace/inside.txt\n")
        .stdout_has("[write] kiln: plugin `./hostile.wasm` failed: cannot write `/workspace/pwned`: Operation not permitted (os error 63)\n")
        .stdout_has("[connect] kiln: plugin `./hostile.wasm` failed: cannot connect to `127.0.0.1:9`: Permission denied (os error 2)\n")
        .stdout_has("[lookup] kiln: plugin `./hostile.wasm` failed: cannot resolve `localhost:80`: failed to lookup address information: Non-recoverable error\n")
        .stdout_has("[secret] secret -> no secret TOKEN\n")
        .stdout_has("[env] env -> env: []\n")
        .stdout_has("✓ inside succeeded")
        .stdout_has("✓ secret succeeded")
        .never_shows("leaked-value")
        .never_shows("root:x:0:0");
    assert!(!kiln.path("pwned").exists());
    // Stopped within the step timeout + 100 ms (the bound).
    let (result, ms) = first_step_of(&kiln, "spin");
    assert_eq!(result, "timed_out");
    assert!(ms < 1100, "stopped after {ms} ms");
}

#[test]
fn a_network_grant_allows_exactly_its_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut text = String::new();
        socket.read_to_string(&mut text).unwrap();
        text
    });
    let yaml = format!(
        "jobs:\n  ok:\n    steps:\n      - id: c\n        uses: ./hostile.wasm\n        with: {{ mode: connect, target: \"{addr}\" }}\n        \
         permissions: {{ network: [\"{addr}\"] }}\n      - run: echo \"${{{{ steps.c.outputs.result }}}}\"\n  \
         other-port:\n    steps:\n      - uses: ./hostile.wasm\n        with: {{ mode: connect, target: \"127.0.0.1:{}\" }}\n        \
         permissions: {{ network: [\"{addr}\"] }}\n",
        addr.port().wrapping_add(1).max(1)
    );
    let out = with_plugins(&[("hostile.wasm", plugins::HOSTILE)])
        .pipeline(&yaml)
        .args(["run"])
        .run();
    out.code(1)
        .stdout_has(&format!("[ok] connected to {addr}\n"))
        .stdout_has(&format!(
            "[other-port] kiln: plugin `./hostile.wasm` failed: cannot connect to `127.0.0.1:{}`: Permission denied (os error 2)\n",
            addr.port().wrapping_add(1).max(1)
        ));
    assert_eq!(accept.join().unwrap(), "hello from the plugin\n");
}

/// Runs `kiln run` on `yaml` and samples the runner's peak RSS (`VmHWM`)
/// while it runs: (exit code, stdout, peak KiB).
fn run_sampling_peak_rss(yaml: &str) -> (Option<i32>, String, u64) {
    let kiln = with_plugins(&[("hostile.wasm", plugins::HOSTILE)]).pipeline(yaml);
    let mut child = kiln
        .command(["run"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        text
    });
    let mut peak_kib = 0u64;
    while child.try_wait().unwrap().is_none() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if let Some(kib) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        {
            peak_kib = peak_kib.max(kib);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = child.wait().unwrap();
    (status.code(), reader.join().unwrap(), peak_kib)
}

#[test]
fn a_stdout_flood_is_truncated_and_the_runner_stays_small() {
    let calm = "  calm:\n    steps:\n      - run: echo calm\n";
    // The baseline: the same plugin and pipeline, quiet for a second (long
    // enough for the sampler to see the plugin loaded and running).
    let (code, text, baseline_kib) = run_sampling_peak_rss(&format!(
        "jobs:\n  flood:\n    steps:\n      - uses: ./hostile.wasm\n        with: {{ mode: sleep, target: \"1000\" }}\n{calm}"
    ));
    assert_eq!(code, Some(0), "{text}");
    let (code, text, peak_kib) = run_sampling_peak_rss(&format!(
        "jobs:\n  flood:\n    steps:\n      - uses: ./hostile.wasm\n        with: {{ mode: flood }}\n{calm}"
    ));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("[flood] [kiln: stdout truncated: the plugin wrote more than 1048576 bytes; the rest is discarded]\n"));
    assert!(text.contains("[flood] kiln: plugin `./hostile.wasm` wrote more than 1048576 bytes to stdout; the rest was discarded\n"));
    assert!(text.contains("[calm] calm\n"));
    assert!(text.len() < 3 << 20, "{} bytes of output", text.len());
    // 1 GiB went through; the runner grew by little more than the 1 MiB
    // it kept (the guest's own 1 MiB buffer, the output in flight).
    assert!(baseline_kib > 0, "no baseline sampled");
    assert!(
        peak_kib <= baseline_kib + 32 * 1024,
        "peak RSS {peak_kib} KiB, quiet baseline {baseline_kib} KiB"
    );
}

#[test]
fn validate_reports_ungranted_capabilities_and_bad_inputs_with_positions() {
    let out = with_plugins(&[("echo.wasm", plugins::ECHO)])
        .pipeline(
            "jobs:\n  a:\n    steps:\n      - uses: ./echo.wasm\n        with: { mesage: hi }\n        permissions: { fs: read }\n",
        )
        .args(["validate", "--json"])
        .run();
    out.code(2);
    let diagnostics: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let summary: Vec<String> = diagnostics
        .as_array()
        .or_else(|| diagnostics["diagnostics"].as_array())
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{}:{} {} {} | {}",
                d["line"],
                d["col"],
                d["code"].as_str().unwrap(),
                d["message"].as_str().unwrap(),
                d["help"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "5:9 missing-input plugin `./echo.wasm` needs input `message` (what to say) | add `message: …` under `with:`",
            "5:17 unknown-input plugin `./echo.wasm` has no input `mesage` | did you mean `message`?",
            "6:9 ungranted-capability plugin `./echo.wasm` needs write access to the workspace, which this step does not grant | set `fs: write` under `permissions:`",
            "6:9 ungranted-capability plugin `./echo.wasm` needs the secret `TOKEN`, which this step does not grant | add `secrets: [TOKEN]` under `permissions:`",
            "6:9 ungranted-capability plugin `./echo.wasm` needs the environment variable `SUFFIX`, which this step does not grant | add `env: [SUFFIX]` under `permissions:`",
        ]
    );
}

#[test]
fn a_plugin_that_cannot_load_is_a_validate_error_with_a_code_frame() {
    let kiln = with_plugins(&[
        ("evil.wasm", plugins::UNKNOWN_IMPORT),
        ("health.wasm", plugins::HEALTH),
    ])
    .file("core.wasm", "\0asm\u{1}\0\0\0")
    .file("text.wasm", "not wasm at all")
    .pipeline(
        "jobs:\n  a:\n    steps:\n      - uses: ./evil.wasm\n      - uses: ./health.wasm\n      - uses: ./core.wasm\n      \
         - uses: ./text.wasm\n      - uses: kiln/nope@1\n",
    );
    let out = kiln.run_with(["validate"]);
    out.code(2)
        .stderr_has("plugin `./evil.wasm` imports `kiln:evil/exfil`, which kiln does not provide; plugins may import `kiln:plugin/host`, `kiln:plugin/artifacts` and WASI 0.2")
        .stderr_has("kiln.yml:4:15")
        .stderr_has("4 │       - uses: ./evil.wasm")
        .stderr_has("plugin `./health.wasm` is a `health-check` component; a `uses:` step needs an `action`")
        .stderr_has("plugin `./core.wasm` is not a WebAssembly component: it is a core WebAssembly module; build it as a component")
        .stderr_has("plugin `./text.wasm` is not a WebAssembly component: it does not start with the WebAssembly magic bytes")
        .stderr_has("`kiln/nope@1` is not a plugin bundled with this kiln")
        .stderr_has("help: bundled plugins: kiln/")
        .stderr_has("`kiln.yml` has 5 errors");
    // `kiln run` refuses the same pipeline before anything runs: the two
    // references that cannot be fetched stop it before loading.
    kiln.run_with(["run"])
        .code(2)
        .stderr_has("`./text.wasm` is not a WebAssembly file: it starts with `not wasm`")
        .stderr_has("`kiln/nope@1` is not bundled with this kiln")
        .stderr_has("`kiln.yml` has 2 errors");
}

#[test]
fn a_second_run_loads_compiled_code_from_the_cache() {
    let kiln = Kiln::new().pipeline("jobs:\n  a:\n    steps:\n      - uses: ./noop.wasm\n");
    std::fs::copy(plugins::NOOP, kiln.path("noop.wasm")).unwrap();
    let home = kiln.path("home");
    let kiln = kiln
        .env("KILN_HOME", home.to_str().unwrap())
        .env("KILN_LOG", "kiln::plugins=info");
    kiln.run_with(["run"])
        .code(0)
        .stderr_has("plugins loaded compiled=1 cache_hits=0");
    let cached: Vec<_> = std::fs::read_dir(home.join("cache/compiled"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let digest = kiln_test_plugins_digest(plugins::NOOP);
    assert!(
        cached[0]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(&digest)
    );
    let mtime = std::fs::metadata(&cached[0]).unwrap().modified().unwrap();
    kiln.run_with(["run"])
        .code(0)
        .stderr_has("plugins loaded compiled=0 cache_hits=1");
    assert_eq!(
        std::fs::metadata(&cached[0]).unwrap().modified().unwrap(),
        mtime
    );
}

/// The hex SHA-256 of a file, via coreutils (the test crate has no hasher).
fn kiln_test_plugins_digest(path: &str) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned()
}

/// A loopback HTTP server that answers one request with 204 and hands the
/// request (head and body) back.
fn one_request_server() -> (u16, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        let (stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .expect("timeout");
        let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
        let mut request = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            request.push_str(&line);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        request.push_str(&String::from_utf8_lossy(&body));
        let mut stream = stream;
        let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
        request
    });
    (port, handle)
}

#[test]
fn bundled_notify_posts_to_a_granted_loopback_url_and_is_refused_without_the_grant() {
    let (port, server) = one_request_server();
    let step = format!(
        "      - uses: kiln/notify@1\n        with: {{ url: \"http://127.0.0.1:{port}/hook\", message: shipped, status: \"${{{{ job.status }}}}\" }}\n"
    );
    let granted = with_plugins(&[]).pipeline(&format!(
        "jobs:\n  tell:\n    steps:\n{step}        permissions: {{ network: [\"127.0.0.1:{port}\"] }}\n"
    ));
    granted.run_with(["run"]).code(0);
    let request = server.join().expect("server");
    assert!(request.starts_with("POST /hook HTTP/1.1\r\n"), "{request}");
    assert!(request.contains("\"message\":\"shipped\""), "{request}");

    let refused = with_plugins(&[]).pipeline(&format!("jobs:\n  tell:\n    steps:\n{step}"));
    refused
        .run_with(["validate"])
        .code(2)
        .stderr_has("ungranted-capability")
        .stderr_has("plugin `kiln/notify@1` needs network access");
}

/// A component an earlier job builds is only a warning at validate time; it
/// is loaded, and its capabilities checked, when its step runs.
#[test]
fn a_plugin_built_by_an_earlier_job_is_loaded_when_its_step_runs() {
    let kiln = with_plugins(&[("staging/echo.wasm", plugins::ECHO)]);
    let yaml = "jobs:\n  build:\n    steps:\n      - run: mkdir -p out && cp staging/echo.wasm out/echo.wasm\n  \
                use:\n    needs: [build]\n    steps:\n      - uses: ./out/echo.wasm\n        with: { message: late }\n        \
                permissions: { fs: write, secrets: [TOKEN], env: [SUFFIX] }\n  \
                ungranted:\n    needs: [build]\n    steps:\n      - uses: ./out/echo.wasm\n        with: { message: late }\n";
    let kiln = kiln.pipeline(yaml);
    kiln.run_with(["validate"])
        .code(0)
        .stderr_has("cannot read plugin `./out/echo.wasm`");
    kiln.run_with(["run"])
        .code(1)
        .stdout_has("[use] hello, late\n")
        .stdout_has("[ungranted] kiln: plugin `./out/echo.wasm` needs write access to the workspace, which this step does not grant: set `fs: write` under `permissions:`\n");
}

/// Ctrl-C interrupts a plugin that never yields of its own accord.
#[test]
fn ctrl_c_stops_a_spinning_plugin() {
    use std::io::{BufRead, BufReader};
    let kiln = with_plugins(&[("hostile.wasm", plugins::HOSTILE)])
        .pipeline("jobs:\n  spin:\n    steps:\n      - uses: ./hostile.wasm\n        with: { mode: loop }\n")
        .args(["run"]);
    let mut child = kiln.spawn();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("▸ ./hostile.wasm") {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "kiln closed stdout early"
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(status.code(), Some(1), "{rest}");
    assert!(
        rest.contains("[spin] kiln: step was cancelled; the plugin was stopped\n"),
        "{rest}"
    );
    assert!(rest.contains("run 1 was cancelled in "), "{rest}");
}

/// A plugin asleep in a host call (`std::thread::sleep`: a WASI clock
/// subscription) never reaches the epoch callback; its step is still
/// stopped at its timeout, and the other job runs on.
#[test]
fn a_plugin_asleep_in_a_host_call_is_stopped_at_its_timeout() {
    let kiln = with_plugins(&[("hostile.wasm", plugins::HOSTILE)]).pipeline(
        "jobs:\n  nap:\n    steps:\n      - uses: ./hostile.wasm\n        timeout: 1s\n        with: { mode: sleep, target: \"3600000\" }\n  \
         other:\n    steps:\n      - run: sleep 2 && echo still here\n",
    );
    kiln.run_with(["run"])
        .code(1)
        .stdout_has("[nap] kiln: step timed out; the plugin was stopped\n")
        .stdout_has("[other] still here\n")
        .stdout_has("✓ other succeeded");
    let (result, ms) = first_step_of(&kiln, "nap");
    assert_eq!(result, "timed_out");
    // The bound is the point: stopped at the timeout, not after an hour
    // (generous for a loaded machine).
    assert!(ms < 10_000, "stopped after {ms} ms");
}

/// Ctrl-C ends a run whose plugin sleeps in a host call, promptly.
#[test]
fn ctrl_c_stops_a_sleeping_plugin() {
    use std::io::{BufRead, BufReader};
    let kiln = with_plugins(&[("hostile.wasm", plugins::HOSTILE)])
        .pipeline("jobs:\n  nap:\n    steps:\n      - uses: ./hostile.wasm\n        with: { mode: sleep, target: \"3600000\" }\n")
        .args(["run"]);
    let mut child = kiln.spawn();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("▸ ./hostile.wasm") {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "kiln closed stdout early"
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let interrupted = std::time::Instant::now();
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let took = interrupted.elapsed();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(status.code(), Some(1), "{rest}");
    assert!(
        rest.contains("[nap] kiln: step was cancelled; the plugin was stopped\n"),
        "{rest}"
    );
    assert!(rest.contains("run 1 was cancelled in "), "{rest}");
    assert!(took < std::time::Duration::from_secs(10), "took {took:?}");
}

/// `host.secret` finds a granted secret whatever the case of the name the
/// plugin asks for, as the grant and `validate` match it.
#[test]
fn host_secret_names_are_case_insensitive() {
    with_plugins(&[("hostile.wasm", plugins::HOSTILE)])
        .pipeline(
            "jobs:\n  lower:\n    steps:\n      - id: s\n        uses: ./hostile.wasm\n        with: { mode: secret, target: token }\n        \
             permissions: { secrets: [TOKEN] }\n      - run: echo \"lower -> ${{ steps.s.outputs.result }}\"\n",
        )
        .run_with(["run", "--secret", "TOKEN=s3cr3t-value"])
        .code(0)
        .stdout_has("[lower] lower -> got secret token = ***\n")
        .never_shows("s3cr3t-value");
}

/// What a plugin hands the host is bounded: too many or too large outputs
/// fail the step, long messages are cut with a marker.
#[test]
fn outputs_errors_and_log_lines_from_a_plugin_are_bounded() {
    let step = |name: &str, with: &str| {
        format!("  {name}:\n    steps:\n      - uses: ./hostile.wasm\n        with: {with}\n")
    };
    let yaml = format!(
        "jobs:\n{}{}{}{}",
        step("count", "{ mode: outputs, target: count }"),
        step("bytes", "{ mode: outputs, target: bytes }"),
        step("bigerr", "{ mode: big-error }"),
        step("biglog", "{ mode: big-log }"),
    );
    let out = with_plugins(&[("hostile.wasm", plugins::HOSTILE)])
        .pipeline(&yaml)
        .run_with(["run"]);
    out.code(1)
        .stdout_has("[count] kiln: plugin `./hostile.wasm` returned too much: it returned 5000 outputs; at most 1000 are allowed; write large values to a file or an artifact instead\n")
        .stdout_has("[bytes] kiln: plugin `./hostile.wasm` returned too much: its outputs are 2097168 bytes together; at most 1048576 are allowed; write large values to a file or an artifact instead\n")
        .stdout_has("eeee… [kiln: truncated, 983047 more bytes]\n")
        .stdout_has("llll… [kiln: truncated, 983043 more bytes]\n")
        .stdout_has("✓ biglog succeeded")
        .never_shows("eend")
        .never_shows("lend");
    let error = out
        .stdout
        .lines()
        .find(|l| l.starts_with("[bigerr] kiln: plugin `./hostile.wasm` failed: "))
        .expect("the cut error");
    assert!(error.len() < 70 << 10, "{} bytes", error.len());
}

/// Metadata past the limits fails the load with the limit; text a plugin
/// chose is printed inert (no terminal escapes).
#[test]
fn metadata_is_bounded_and_printed_inert() {
    let kiln = with_plugins(&[
        ("hostile.wasm", plugins::HOSTILE),
        ("bloated.wasm", plugins::BLOATED),
    ]);
    kiln.run_with(["plugin", "inspect", "./bloated.wasm"])
        .code(2)
        .stderr_has("`./bloated.wasm` cannot be loaded: plugin `./bloated.wasm` has unusable metadata: `metadata()` returned a list of 300 entries, where at most 256 are allowed\n");
    let out = kiln.run_with(["plugin", "inspect", "./hostile.wasm"]);
    out.code(0)
        .stdout_has("misbehaves on purpose\\u{1b}]0;pwned\\u{7}\\u{d}gone")
        .never_shows("\x1b");
}

/// A component an earlier job produces that imports what kiln does not
/// provide fails its own step when it runs; the other jobs go on.
#[test]
fn a_late_plugin_with_an_unknown_import_fails_only_its_step() {
    let kiln = with_plugins(&[("staging/evil.wasm", plugins::UNKNOWN_IMPORT)]).pipeline(
        "jobs:\n  build:\n    steps:\n      - run: mkdir -p out && cp staging/evil.wasm out/evil.wasm\n  \
         use:\n    needs: [build]\n    steps:\n      - uses: ./out/evil.wasm\n  \
         other:\n    needs: [build]\n    steps:\n      - run: sleep 1 && echo fine\n",
    );
    kiln.run_with(["run"])
        .code(1)
        .stdout_has("[use] kiln: plugin `./out/evil.wasm` imports `kiln:evil/exfil`, which kiln does not provide; plugins may import `kiln:plugin/host`, `kiln:plugin/artifacts` and WASI 0.2\n")
        .stdout_has("[other] fine\n")
        .stdout_has("✓ other succeeded");
}

/// A plugin asleep in `metadata()` (a host call) fails its load at the
/// documented 5 s limit instead of hanging `inspect`, `validate` or `run`.
#[test]
fn a_plugin_asleep_in_metadata_fails_to_load_at_the_limit() {
    let kiln = with_plugins(&[("drowsy.wasm", plugins::DROWSY)]);
    let started = std::time::Instant::now();
    kiln.run_with(["plugin", "inspect", "./drowsy.wasm"])
        .code(2)
        .stderr_has("`./drowsy.wasm` cannot be loaded: plugin `./drowsy.wasm` failed while loading its metadata: `metadata()` did not return within 5 s\n");
    // The bound is the point: the limit, not an hour (generous).
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(60), "took {took:?}");
}

/// Runs `job` alone with `--json` and returns its first step's result and
/// duration in milliseconds.
fn first_step_of(kiln: &Kiln, job: &str) -> (String, u64) {
    let events = kiln.run_with(["run", "--json", "--job", job]).json_lines();
    let finished = events
        .iter()
        .find(|e| e["type"] == "step_finished" && e["step"] == 0)
        .expect("step_finished");
    (
        finished["result"].as_str().expect("result").to_owned(),
        finished["duration"].as_u64().expect("duration"),
    )
}
