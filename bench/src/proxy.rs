//! `kiln-bench proxy`: the deployment proxy's overhead and the rollback
//! decision latency, on loopback.
//!
//! 1. Overhead: `wrk` against one backend process, straight, through a
//!    real `kiln deploy proxy` process routing to it, and through nginx
//!    (when installed) as the reference reverse proxy, sides alternating
//!    round by round, at 1 and 16 keep-alive connections. Twice: with a
//!    backend that answers at once (a proxy's pure cost) and with one that
//!    does some work per request, as a service does (SHA-256 over
//!    `--work-kib` KiB, 64 and 256 by default). Each proxy's own CPU per request is read from
//!    `/proc`, so the figures say what a proxy costs, not only how the two
//!    cores were shared.
//! 2. Decision latency: a canary of a version answering 500s; the time
//!    from the error-rate threshold being crossed (the `min-requests`-th
//!    failed answer) to the last failed answer (traffic back on stable).
//!    The instances are pre-started in-process servers handed out by a
//!    platform stub: process start-up is not what is timed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use kiln_deploy::contract::KeyValue;
use kiln_deploy::controller::{Controller, Tuning};
use kiln_deploy::journal::Journal;
use kiln_deploy::platform::{Instance, InstanceHandle, InstanceSpec, Platform, Strays};
use kiln_deploy::proxy::{Backend, ProxyClient, Router, RoutingTable, Traffic};
use kiln_deploy::spec::{Readiness, RolloutSettings, RunSpec, ServiceSpec};
use kiln_deploy::{BoxFuture, Outcome};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::cpu::{process_cpu, tree_cpu};
use crate::error::Error as BenchError;

/// Settings of the proxy benchmark.
#[derive(Debug, Clone)]
pub struct ProxyBench {
    /// The `kiln` binary whose `kiln deploy proxy` is measured.
    pub kiln: PathBuf,
    /// Seconds per `wrk` run.
    pub seconds: u64,
    /// Runs per side and configuration.
    pub rounds: usize,
    /// Keep-alive connection counts to measure at.
    pub connections: Vec<usize>,
    /// KiB the working backends hash per request, one backend per size.
    pub work_kib: Vec<usize>,
    /// Rollback rounds for the decision latency.
    pub decisions: usize,
}

/// Serves `GET` on `listener` with `body` and `status`, hashing `work`
/// first when it is not empty.
async fn serve_backend(
    listener: TcpListener,
    body: &'static str,
    status: StatusCode,
    work: Arc<Vec<u8>>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let work = work.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |_req| {
                if !work.is_empty() {
                    std::hint::black_box(Sha256::digest(work.as_slice()));
                }
                async move {
                    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
                    *r.status_mut() = status;
                    Ok::<_, Infallible>(r)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn backend(body: &'static str, status: StatusCode) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(serve_backend(listener, body, status, Arc::default()));
    addr
}

/// `kiln-bench proxy-backend`: the backend as a process of its own, so
/// its CPU is not the proxy's and the load generator's. Prints its address
/// on stdout, then serves until stdin closes.
pub fn backend_process(work_kib: usize) -> Result<(), BenchError> {
    let rt = runtime()?;
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(BenchError::io("binding the backend"))?;
        let addr = listener
            .local_addr()
            .map_err(BenchError::io("reading the backend's address"))?;
        println!("{addr}");
        let work = Arc::new(vec![0x5a; work_kib * 1024]);
        tokio::spawn(serve_backend(listener, "ok\n", StatusCode::OK, work));
        // The parent holds our stdin: when it goes, so do we.
        let mut stdin = tokio::io::stdin();
        let mut byte = [0u8; 1];
        let _ = stdin.read(&mut byte).await;
        Ok(())
    })
}

/// The bench's own runtime (load for the decision latency, the backend
/// process, the control client).
fn runtime() -> Result<tokio::runtime::Runtime, BenchError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| BenchError::Proxy(format!("tokio runtime: {e}")))
}

/// A child process, killed and reaped when dropped.
struct Process {
    child: Child,
    /// Its CPU includes its children's (nginx's workers).
    tree: bool,
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.tree {
            // nginx's workers leave with their master on SIGTERM, not
            // SIGKILL.
            let _ = Command::new("kill")
                .arg(self.child.id().to_string())
                .status();
            let _ = self.child.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    fn new(child: Child) -> Self {
        Self { child, tree: false }
    }

    fn cpu(&self) -> Duration {
        let pid = self.child.id();
        let cpu = if self.tree {
            tree_cpu(pid)
        } else {
            process_cpu(pid)
        };
        cpu.unwrap_or_default()
    }
}

/// What one `wrk` run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
struct WrkRun {
    requests: u64,
    rps: f64,
    p99: Duration,
}

/// Figures out of `wrk --latency` output; an error when requests failed
/// or the output is not wrk's.
fn parse_wrk(out: &str) -> Result<WrkRun, String> {
    let failed = ["Non-2xx or 3xx responses", "Socket errors"];
    if let Some(line) = out.lines().find(|l| failed.iter().any(|f| l.contains(f))) {
        return Err(format!("requests failed: {}", line.trim()));
    }
    let field = |prefix: &str| {
        out.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
            .ok_or_else(|| format!("no `{prefix}` in wrk's output:\n{out}"))
    };
    let rps = field("Requests/sec:")?
        .parse()
        .map_err(|e| format!("bad Requests/sec: {e}"))?;
    let p99 = parse_duration(field("99%")?).ok_or("bad 99% latency")?;
    let requests = out
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or("no request count in wrk's output")?;
    Ok(WrkRun { requests, rps, p99 })
}

/// `812.00us`, `1.20ms`, `2.00s` as wrk prints them.
fn parse_duration(text: &str) -> Option<Duration> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else {
        return None;
    };
    Some(Duration::from_secs_f64(number.parse::<f64>().ok()? * scale))
}

fn wrk(addr: SocketAddr, connections: usize, seconds: u64) -> Result<WrkRun, BenchError> {
    let threads = connections.clamp(1, 2);
    let out = Command::new("wrk")
        .args([
            format!("-t{threads}"),
            format!("-c{connections}"),
            format!("-d{seconds}s"),
            "--latency".into(),
            format!("http://{addr}/"),
        ])
        .output()
        .map_err(|e| {
            BenchError::Proxy(format!(
                "cannot run `wrk` ({e}); install it (Debian: `apt-get install wrk`)"
            ))
        })?;
    if !out.status.success() {
        return Err(BenchError::Proxy(format!(
            "wrk failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    parse_wrk(&String::from_utf8_lossy(&out.stdout)).map_err(BenchError::Proxy)
}

/// One way to the backend, and its figures over the rounds.
struct Side {
    name: &'static str,
    addr: SocketAddr,
    /// The proxy process in between (none for `direct`).
    proxy: Option<Process>,
    rps: Vec<f64>,
    p99_ms: Vec<f64>,
    /// CPU per request, µs: of the proxy, or of the backend when direct.
    cpu_us: Vec<f64>,
}

impl Side {
    fn new(name: &'static str, addr: SocketAddr, proxy: Option<Process>) -> Self {
        Self {
            name,
            addr,
            proxy,
            rps: Vec::new(),
            p99_ms: Vec::new(),
            cpu_us: Vec::new(),
        }
    }

    fn measure(&mut self, backend: &Process, conns: usize, seconds: u64) -> Result<(), BenchError> {
        let whose = self.proxy.as_ref().unwrap_or(backend);
        let before = whose.cpu();
        let run = wrk(self.addr, conns, seconds)?;
        let cpu = whose.cpu().saturating_sub(before);
        self.rps.push(run.rps);
        self.p99_ms.push(run.p99.as_secs_f64() * 1e3);
        self.cpu_us
            .push(cpu.as_secs_f64() * 1e6 / run.requests.max(1) as f64);
        Ok(())
    }

    fn clear(&mut self) {
        self.rps.clear();
        self.p99_ms.clear();
        self.cpu_us.clear();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn spawn_backend(work_kib: usize) -> Result<(Process, SocketAddr), BenchError> {
    let exe = std::env::current_exe().map_err(BenchError::io("finding kiln-bench"))?;
    let mut child = Command::new(exe)
        .args(["proxy-backend", "--work-kib", &work_kib.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(BenchError::io("starting the backend"))?;
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
        .map_err(BenchError::io("reading the backend's address"))?;
    let process = Process::new(child);
    let addr = line
        .trim()
        .parse()
        .map_err(|e| BenchError::Proxy(format!("backend printed `{}`: {e}", line.trim())))?;
    Ok((process, addr))
}

/// A free loopback port for a proxy to listen on.
fn free_port() -> Result<SocketAddr, BenchError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(BenchError::io("finding a free port"))
}

async fn spawn_kiln_proxy(
    kiln: &Path,
    socket: &Path,
    to: SocketAddr,
) -> Result<(Process, SocketAddr), BenchError> {
    let listen = free_port()?;
    let child = Command::new(kiln)
        .args([
            "deploy",
            "proxy",
            "--listen",
            &listen.to_string(),
            "--socket",
        ])
        .arg(socket)
        .stdin(Stdio::null())
        .spawn()
        .map_err(BenchError::io(format!(
            "starting `{} deploy proxy`",
            kiln.display()
        )))?;
    let process = Process::new(child);
    let client = ProxyClient::new("bench", socket);
    let fail = |e: kiln_deploy::DeployError| BenchError::Proxy(e.to_string());
    client
        .wait_up(Duration::from_secs(10))
        .await
        .map_err(fail)?;
    client
        .set_table(RoutingTable {
            stable: Some("v1".into()),
            candidate: None,
            weight: 0,
            backends: vec![Backend {
                instance: "web-v1-1".into(),
                version: "v1".into(),
                addr: to,
            }],
            sticky: None,
        })
        .await
        .map_err(fail)?;
    Ok((process, listen))
}

/// nginx as the reference reverse proxy, configured as a tuned one is for
/// this job: a worker per core, keep-alive to the backend, no access log.
/// `None` when nginx is not installed.
fn spawn_nginx(dir: &Path, to: SocketAddr) -> Result<Option<(Process, SocketAddr)>, BenchError> {
    if Command::new("nginx").arg("-v").output().is_err() {
        return Ok(None);
    }
    let listen = free_port()?;
    let d = dir.display();
    let conf = format!(
        "worker_processes auto;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}; proxy_temp_path {d};\n  \
         fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n  \
         upstream backend {{ server {to}; keepalive 64; }}\n  \
         server {{ listen {listen}; location / {{ proxy_pass http://backend; \
         proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).map_err(BenchError::io("writing nginx.conf"))?;
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&path)
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .spawn()
        .map_err(BenchError::io("starting nginx"))?;
    let mut process = Process::new(child);
    process.tree = true;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(listen).is_err() {
        if Instant::now() > deadline {
            return Err(BenchError::Proxy(format!(
                "nginx did not listen on {listen}; see {d}/nginx-error.log"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Some((process, listen)))
}

impl ProxyBench {
    /// Runs both measurements and prints the figures.
    pub fn run(&self) -> Result<(), BenchError> {
        let rt = runtime()?;
        rt.block_on(self.overhead())?;
        rt.block_on(self.decision_latency())
    }

    async fn overhead(&self) -> Result<(), BenchError> {
        let dir = tempfile::tempdir().map_err(BenchError::io("creating a temp dir"))?;
        println!(
            "proxy overhead: wrk, {} s per run, {} runs per side, sides alternating, medians",
            self.seconds, self.rounds
        );
        for &work_kib in std::iter::once(&0).chain(&self.work_kib) {
            let (backend, direct) = spawn_backend(work_kib)?;
            let socket = dir.path().join(format!("proxy-{work_kib}.sock"));
            let (kiln, through_kiln) = spawn_kiln_proxy(&self.kiln, &socket, direct).await?;
            let mut sides = vec![
                Side::new("direct", direct, None),
                Side::new("kiln", through_kiln, Some(kiln)),
            ];
            if let Some((nginx, through_nginx)) = spawn_nginx(dir.path(), direct)? {
                sides.push(Side::new("nginx", through_nginx, Some(nginx)));
            }
            let what = if work_kib == 0 {
                "a backend that answers at once".to_owned()
            } else {
                format!("a backend that hashes {work_kib} KiB per request")
            };
            for &conns in &self.connections {
                println!("  {what}, keep-alive connections: {conns}");
                // Warm connections, pools and caches on every path.
                for side in &sides {
                    wrk(side.addr, conns, 1)?;
                }
                for side in &mut sides {
                    side.clear();
                }
                for _ in 0..self.rounds {
                    for side in &mut sides {
                        side.measure(&backend, conns, self.seconds)?;
                    }
                }
                let direct_rps = median(sides[0].rps.clone());
                for side in &sides {
                    let rps = median(side.rps.clone());
                    let (ratio, whose) = match side.proxy {
                        None => (String::new(), "backend"),
                        Some(_) => (format!("{:.2}×", rps / direct_rps), "proxy"),
                    };
                    println!(
                        "    {:<7} {:>9.0} req/s {:>6}   p99 {:>6.3} ms   {whose} CPU {:>5.1} µs/request",
                        side.name,
                        rps,
                        ratio,
                        median(side.p99_ms.clone()),
                        median(side.cpu_us.clone()),
                    );
                }
            }
        }
        println!("  goals for kiln: ≥ 0.8× direct throughput, ≤ +1 ms p99");
        Ok(())
    }

    async fn decision_latency(&self) -> Result<(), BenchError> {
        let mut samples = Vec::new();
        for _ in 0..self.decisions {
            samples.push(one_rollback().await?);
        }
        let ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        let max = ms.iter().copied().fold(0.0, f64::max);
        println!(
            "decision latency (threshold crossed → traffic back on stable), {} rollbacks: median {:.0} ms, max {max:.0} ms (goal ≤ 1000 ms)",
            ms.len(),
            median(ms.clone())
        );
        Ok(())
    }
}

/// One keep-alive GET: the status.
async fn get(conn: &mut BufReader<TcpStream>) -> std::io::Result<u16> {
    conn.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        .await?;
    let mut line = String::new();
    conn.read_line(&mut line).await?;
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0;
    loop {
        line.clear();
        conn.read_line(&mut line).await?;
        let h = line.trim_end().to_ascii_lowercase();
        if h.is_empty() {
            break;
        }
        if let Some(v) = h.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await?;
    Ok(status)
}

async fn connect(addr: SocketAddr) -> std::io::Result<BufReader<TcpStream>> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(BufReader::new(s))
}

/// Hands out pre-started in-process backends by version.
struct Prestarted {
    v1: SocketAddr,
    v3: std::sync::Mutex<Vec<SocketAddr>>,
}

impl Platform for Prestarted {
    fn start<'a>(&'a self, spec: &'a InstanceSpec) -> BoxFuture<'a, kiln_deploy::Result<Instance>> {
        Box::pin(async move {
            let addr = self
                .v3
                .lock()
                .expect("not poisoned")
                .pop()
                .unwrap_or(self.v1);
            Ok(Instance {
                name: spec.name.clone(),
                version: spec.service.version.clone(),
                host: "127.0.0.1".into(),
                port: addr.port(),
                handle: InstanceHandle::Container {
                    id: spec.name.clone(),
                },
            })
        })
    }

    fn stop<'a>(
        &'a self,
        _: &'a InstanceHandle,
        _: Duration,
    ) -> BoxFuture<'a, kiln_deploy::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn alive<'a>(&'a self, _: &'a InstanceHandle) -> BoxFuture<'a, bool> {
        Box::pin(async { true })
    }

    fn stop_strays<'a>(&'a self, _: &'a Strays<'a>) -> BoxFuture<'a, kiln_deploy::Result<usize>> {
        // Its backends live in this process: nothing can stray.
        Box::pin(async { Ok(0) })
    }
}

fn spec(version: &str) -> ServiceSpec {
    ServiceSpec {
        service: "web".into(),
        version: version.into(),
        run: RunSpec::Command("in-process".into()),
        port: None,
        replicas: 1,
        env: Vec::new(),
        workdir: std::env::temp_dir(),
        readiness: Readiness {
            path: None,
            timeout: Duration::from_secs(5),
        },
        health_params: Vec::new(),
    }
}

const MIN_REQUESTS: usize = 20;

async fn one_rollback() -> Result<Duration, BenchError> {
    let io = |e: kiln_deploy::DeployError| BenchError::Proxy(e.to_string());
    let dir = tempfile::tempdir().map_err(|e| BenchError::Proxy(e.to_string()))?;
    let journal = Journal::open(dir.path()).map_err(io)?;
    let v1 = backend("v1\n", StatusCode::OK).await;
    let v3 = backend("v3\n", StatusCode::INTERNAL_SERVER_ERROR).await;
    // v1 serves: recorded as the stable version with one live instance.
    journal.set_stable("web", Some(&spec("v1"))).map_err(io)?;
    let stable = Instance {
        name: "web-v1-r0-1".into(),
        version: "v1".into(),
        host: "127.0.0.1".into(),
        port: v1.port(),
        handle: InstanceHandle::Container { id: "v1".into() },
    };
    journal
        .instance_starting(0, "web", "v1", &stable.name)
        .map_err(io)?;
    journal.instance_started(&stable).map_err(io)?;
    let router = Arc::new(Router::new());
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| BenchError::Proxy(e.to_string()))?;
    let proxy = listener
        .local_addr()
        .map_err(|e| BenchError::Proxy(e.to_string()))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(kiln_deploy::proxy::serve(
        listener,
        router.clone(),
        shutdown.clone(),
    ));
    let stop_load = CancellationToken::new();
    let load = {
        let stop = stop_load.clone();
        tokio::spawn(async move {
            let mut conn = connect(proxy).await?;
            let started = Instant::now();
            let mut failures = Vec::new();
            while !stop.is_cancelled() {
                if get(&mut conn).await? == 500 {
                    failures.push(started.elapsed());
                }
            }
            Ok::<_, std::io::Error>(failures)
        })
    };
    let platform = Arc::new(Prestarted {
        v1,
        v3: std::sync::Mutex::new(vec![v3]),
    });
    let controller = Controller {
        journal: &journal,
        platform,
        traffic: Arc::new(router.clone()),
        health: None,
        log: Arc::new(|_| {}),
        stop: CancellationToken::new(),
        tuning: Tuning::default(),
    };
    let mut canary = bundled_canary().await?;
    let params = [
        ("weights", "10,50,100"),
        ("interval", "60s"),
        ("poll", "100ms"),
        ("max-error-rate", "0.1"),
        ("min-requests", "20"),
    ];
    let settings = RolloutSettings {
        run: 0,
        strategy: "kiln/canary@1".into(),
        strategy_params: params
            .iter()
            .map(|(k, v)| KeyValue {
                key: (*k).into(),
                value: (*v).into(),
            })
            .collect(),
        health: None,
        health_digest: None,
        manual_approval: false,
        approval_timeout: Duration::from_secs(1),
        listen: proxy,
        sticky: None,
    };
    let outcome = controller
        .rollout(spec("v3"), settings, &mut canary)
        .await
        .map_err(io)?;
    // A few more requests prove traffic stays on stable.
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop_load.cancel();
    shutdown.cancel();
    let failures = load
        .await
        .map_err(|e| BenchError::Proxy(e.to_string()))?
        .map_err(|e| BenchError::Proxy(e.to_string()))?;
    if !matches!(outcome, Outcome::RolledBack(_)) || failures.len() < MIN_REQUESTS {
        return Err(BenchError::Proxy(format!(
            "the canary did not roll back as expected ({outcome:?}, {} failed answers)",
            failures.len()
        )));
    }
    Ok(failures[failures.len() - 1] - failures[MIN_REQUESTS - 1])
}

/// `kiln/canary@1`, the WASM component a deployment runs, loaded as `kiln
/// run` loads it.
async fn bundled_canary() -> Result<kiln_deploy::components::WasmStrategy, BenchError> {
    let fail = |e: &dyn std::fmt::Display| BenchError::Proxy(format!("kiln/canary@1: {e}"));
    let bytes = kiln_bundled::find("canary", 1)
        .ok_or_else(|| fail(&"not bundled"))?
        .bytes;
    let runtime = kiln_wasm::Runtime::new(kiln_wasm::default_cache_dir(), Default::default())
        .map_err(|e| fail(&e))?;
    let plugin = runtime
        .load("kiln/canary@1", bytes, &kiln_wasm::sha256(bytes))
        .await
        .map_err(|e| fail(&e))?;
    Ok(kiln_deploy::components::WasmStrategy::new(
        Arc::new(runtime),
        plugin,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK: &str = "Running 1s test @ http://127.0.0.1:4000/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   612.40us  201.11us   4.01ms   80.00%
    Req/Sec    12.90k   402.00    13.50k    70.00%
  Latency Distribution
     50%  580.00us
     75%  700.00us
     90%  850.00us
     99%    1.25ms
  25790 requests in 1.00s, 2.02MB read
Requests/sec:  25779.52
Transfer/sec:      2.02MB
";

    #[test]
    fn reads_throughput_p99_and_count_from_wrk() {
        let run = parse_wrk(WRK).unwrap();
        assert_eq!(run.requests, 25_790);
        assert!((run.rps - 25_779.52).abs() < 1e-6);
        assert_eq!(run.p99, Duration::from_micros(1250));
    }

    #[test]
    fn failed_requests_are_an_error_not_a_figure() {
        let failing = WRK.replace(
            "Requests/sec",
            "  Non-2xx or 3xx responses: 12\nRequests/sec",
        );
        assert!(parse_wrk(&failing).unwrap_err().contains("Non-2xx"));
        assert!(parse_wrk("command not found").is_err());
    }

    #[test]
    fn wrk_durations_in_every_unit() {
        assert_eq!(parse_duration("812.00us"), Some(Duration::from_micros(812)));
        assert_eq!(parse_duration("2.00s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("12"), None);
    }
}
