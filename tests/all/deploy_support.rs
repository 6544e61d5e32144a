//! What the deployment tests share: the HTTP test service (built once with
//! `rustc`), a pipeline for one service version, a keep-alive HTTP client
//! and a bounded request loop, and a guard that stops the service.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::support::{Kiln, Output};

/// The test service binary, compiled on first use.
pub fn service_binary() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let source = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/deploy/service.rs"
        );
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kiln-test-service");
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let status = std::process::Command::new(rustc)
            .args(["--edition", "2024", "-C", "opt-level=1", "-o"])
            .arg(&out)
            .arg(source)
            .status()
            .expect("rustc runs");
        assert!(status.success(), "the test service compiles");
        out
    })
}

/// The test service linked statically, for a `FROM scratch` image;
/// compiled on first use.
pub fn static_service_binary() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let source = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/deploy/service.rs"
        );
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kiln-test-service-static");
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let status = std::process::Command::new(rustc)
            .args(["--edition", "2024", "-C", "opt-level=1"])
            .args(["-C", "target-feature=+crt-static", "-o"])
            .arg(&out)
            .arg(source)
            .status()
            .expect("rustc runs");
        assert!(status.success(), "the static test service compiles");
        out
    })
}

/// A free loopback port for a proxy.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A pipeline deploying `web` with `command:` the test service; the version
/// and mode come from `--var VERSION=… --var MODE=…`.
pub fn pipeline(port: u16, replicas: u32, strategy: &str, extra: &str) -> String {
    format!(
        r#"jobs:
  ship:
    deploy:
      service: web
      command: exec {bin}
      version: ${{VERSION}}
      replicas: {replicas}
      env: {{ VERSION: "${{VERSION}}", MODE: "${{MODE:-good}}" }}
      readiness: {{ timeout: 10s }}
      strategy: {strategy}
      health: {{ uses: kiln/http-health@1, with: {{ path: /healthz }} }}
      proxy: {{ listen: "127.0.0.1:{port}" }}
{extra}"#,
        bin = service_binary().display()
    )
}

/// Stops the service (instances and proxy) when the test ends, however it ends.
pub struct Teardown<'k>(pub &'k Kiln);

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        let _ = self.0.run_with(["deploy", "stop", "web"]);
    }
}

/// Like [`Teardown`], for a service of another name.
pub struct TeardownService<'k>(pub &'k Kiln, pub &'k str);

impl Drop for TeardownService<'_> {
    fn drop(&mut self) {
        let _ = self.0.run_with(["deploy", "stop", self.1]);
    }
}

/// A keep-alive HTTP/1.1 client.
pub struct Client {
    port: u16,
    conn: Option<BufReader<TcpStream>>,
}

impl Client {
    pub fn new(port: u16) -> Self {
        Self { port, conn: None }
    }

    /// `GET /` with `extra` header lines: `(status, body)`, or `(0, error)`
    /// when the connection failed.
    pub fn get(&mut self, path: &str, extra: &str) -> (u16, String) {
        for _ in 0..2 {
            if self.conn.is_none() {
                match TcpStream::connect(("127.0.0.1", self.port)) {
                    Ok(s) => {
                        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        s.set_nodelay(true).unwrap();
                        self.conn = Some(BufReader::new(s));
                    }
                    Err(e) => return (0, e.to_string()),
                }
            }
            match self.exchange(path, extra) {
                Ok(r) => return r,
                // A connection the proxy closed while idle is retried once
                // on a fresh one, as any HTTP client does.
                Err(_) => self.conn = None,
            }
        }
        (0, "connection failed twice".into())
    }

    fn exchange(&mut self, path: &str, extra: &str) -> std::io::Result<(u16, String)> {
        let conn = self.conn.as_mut().unwrap();
        // One write: `write!` would send each fragment on its own and meet
        // Nagle's algorithm and delayed ACKs (40 ms a request).
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n");
        conn.get_mut().write_all(request.as_bytes())?;
        let mut status = String::new();
        if conn.read_line(&mut status)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let code: u16 = status
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let mut length = 0;
        loop {
            let mut h = String::new();
            conn.read_line(&mut h)?;
            let h = h.trim_end().to_ascii_lowercase();
            if h.is_empty() {
                break;
            }
            if let Some(v) = h.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        conn.read_exact(&mut body)?;
        Ok((code, String::from_utf8_lossy(&body).trim().to_owned()))
    }
}

/// GETs `/` in a loop on one keep-alive connection until stopped or
/// `limit` requests were made; returns every `(status, body)` in order.
pub struct Load {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<(u16, String)>>,
}

impl Load {
    pub fn start(port: u16, limit: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut client = Client::new(port);
            let mut seen = Vec::new();
            while !flag.load(Ordering::SeqCst) && seen.len() < limit {
                seen.push(client.get("/", ""));
                std::thread::sleep(Duration::from_millis(1));
            }
            seen
        });
        Self { stop, handle }
    }

    pub fn finish(self) -> Vec<(u16, String)> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap()
    }
}

/// `n` sequential GETs on fresh client state: the bodies.
pub fn sample(port: u16, n: usize) -> Vec<(u16, String)> {
    let mut c = Client::new(port);
    (0..n).map(|_| c.get("/", "")).collect()
}

/// How many processes of this test's workspace run `version` (found by
/// their cwd and the `KILN_DEPLOY_VERSION` kiln gives each instance).
pub fn running(kiln: &Kiln, version: &str) -> usize {
    let needle = format!("KILN_DEPLOY_VERSION={version}");
    let dir = kiln.dir().canonicalize().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir)
                && std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
        })
        .count()
}

/// `kiln run` of the pipeline at `version`, the service in `mode`.
pub fn deploy(kiln: &Kiln, version: &str, mode: &str) -> Output {
    kiln.run_with([
        "run",
        "--var",
        &format!("VERSION={version}"),
        "--var",
        &format!("MODE={mode}"),
    ])
}

/// The canary the kill -9 tests deploy with. A first deployment watches one
/// whole interval: short for v1 (`INTERVAL=1s`), long enough for v2 that
/// the kill lands mid-rollout.
pub const SLOW_CANARY: &str =
    "{ uses: kiln/canary@1, with: { weights: '50,100', interval: '${INTERVAL:-60s}' } }";

/// Deploys v1 with [`SLOW_CANARY`], starts v2, and kills -9 that `kiln` as
/// soon as v2 gets traffic (waiting up to `within`).
pub fn kill_9_mid_canary(kiln: &Kiln, port: u16, within: Duration) {
    kiln.run_with(["run", "--var", "VERSION=v1", "--var", "INTERVAL=1s"])
        .code(0);
    let mut child = Kiln::spawn_with(kiln, ["run", "--var", "VERSION=v2"]);
    eventually("v2 to get traffic", within, || {
        sample(port, 10).iter().any(|(_, b)| b == "v2")
    });
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Polls until `f` holds; a test that waits longer than `within` fails.
pub fn eventually(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A rolling v1 → v2 of three replicas went one instance at a time, each
/// healthy before it got traffic, every v1 instance serving until the
/// promotion; and no request of the loop that ran meanwhile failed, while
/// it saw both versions.
pub fn assert_rolled_one_at_a_time(out: &Output, seen: &[(u16, String)]) {
    let order: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split("] ").nth(1))
        .filter(|l| l.starts_with("→ "))
        .collect();
    assert_eq!(
        order,
        [
            "→ scale v2 to 1",
            "→ check-health",
            "→ set-weight 33%",
            "→ scale v2 to 2",
            "→ check-health",
            "→ set-weight 66%",
            "→ scale v2 to 3",
            "→ check-health",
            "→ set-weight 100%",
            "→ promote",
        ],
        "{out}"
    );
    let failed: Vec<_> = seen.iter().filter(|(code, _)| *code != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        seen.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        seen.iter().any(|(_, b)| b == "v1") && seen.iter().any(|(_, b)| b == "v2"),
        "the request loop did not overlap the rollout: {} answers, all from {:?}",
        seen.len(),
        seen.first().map(|(_, b)| b)
    );
}
