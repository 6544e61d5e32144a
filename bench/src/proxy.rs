//! `kiln-bench proxy`: the deployment proxy's overhead and the rollback
//! decision latency, on loopback.
//!
//! 1. Throughput and latency of `GET /` straight to one backend and
//!    through the kiln proxy to the same backend, alternating rounds, the
//!    same bounded request count and keep-alive connections each time.
//! 2. Decision latency: a canary of a version answering 500s; the time
//!    from the error-rate threshold being crossed (the `min-requests`-th
//!    failed answer) to the last failed answer (traffic back on stable).
//!
//! Backends are in-process hyper servers, so both sides measure the proxy,
//! not a service. In (2) the instances are pre-started in-process servers
//! handed out by a platform stub: process start-up is not what is timed.

use std::convert::Infallible;
use std::net::SocketAddr;
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
use kiln_deploy::proxy::{Backend, Router, RoutingTable};
use kiln_deploy::spec::{Readiness, RolloutSettings, RunSpec, ServiceSpec};
use kiln_deploy::{BoxFuture, Outcome};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::error::Error as BenchError;

/// Settings of the proxy benchmark.
#[derive(Debug, Clone)]
pub struct ProxyBench {
    /// Requests per round and side.
    pub requests: usize,
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// Rounds per side.
    pub rounds: usize,
    /// Rollback rounds for the decision latency.
    pub decisions: usize,
}

struct Round {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

async fn backend(body: &'static str, status: StatusCode) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| async move {
                    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
                    *r.status_mut() = status;
                    Ok::<_, Infallible>(r)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
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

async fn round(addr: SocketAddr, requests: usize, connections: usize) -> Result<Round, BenchError> {
    let per = requests / connections;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        tasks.push(tokio::spawn(async move {
            let mut conn = connect(addr).await?;
            let mut latencies = Vec::with_capacity(per);
            for _ in 0..per {
                let t = Instant::now();
                let status = get(&mut conn).await?;
                if status != 200 {
                    return Err(std::io::Error::other(format!("status {status}")));
                }
                latencies.push(t.elapsed());
            }
            Ok::<_, std::io::Error>(latencies)
        }));
    }
    let mut all = Vec::with_capacity(requests);
    for t in tasks {
        let latencies = t
            .await
            .map_err(|e| BenchError::Proxy(format!("load task: {e}")))?
            .map_err(|e| BenchError::Proxy(format!("request failed: {e}")))?;
        all.extend(latencies);
    }
    let elapsed = started.elapsed();
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Ok(Round {
        rps: all.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

impl ProxyBench {
    /// Runs both measurements and prints the figures.
    pub fn run(&self) -> Result<(), BenchError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| BenchError::Proxy(format!("tokio runtime: {e}")))?;
        rt.block_on(self.overhead())?;
        rt.block_on(self.decision_latency())
    }

    async fn overhead(&self) -> Result<(), BenchError> {
        let direct = backend("ok\n", StatusCode::OK).await;
        let router = Arc::new(Router::new());
        router.set_table(RoutingTable {
            stable: Some("v1".into()),
            candidate: None,
            weight: 0,
            backends: vec![Backend {
                instance: "web-v1-1".into(),
                version: "v1".into(),
                addr: direct,
            }],
            sticky: None,
        });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| BenchError::Proxy(format!("bind: {e}")))?;
        let proxied = listener
            .local_addr()
            .map_err(|e| BenchError::Proxy(e.to_string()))?;
        let shutdown = CancellationToken::new();
        tokio::spawn(kiln_deploy::proxy::serve(
            listener,
            router,
            shutdown.clone(),
        ));
        // Warm both paths (connections, pools, caches) before measuring.
        round(direct, 2_000, self.connections).await?;
        round(proxied, 2_000, self.connections).await?;
        let (mut d, mut p) = (Vec::new(), Vec::new());
        for _ in 0..self.rounds {
            d.push(round(direct, self.requests, self.connections).await?);
            p.push(round(proxied, self.requests, self.connections).await?);
        }
        shutdown.cancel();
        let figures = |rs: &[Round]| {
            (
                median(rs.iter().map(|r| r.rps).collect()),
                median(rs.iter().map(|r| r.p50.as_secs_f64() * 1e3).collect()),
                median(rs.iter().map(|r| r.p99.as_secs_f64() * 1e3).collect()),
            )
        };
        let (drps, dp50, dp99) = figures(&d);
        let (prps, pp50, pp99) = figures(&p);
        println!(
            "proxy overhead: {} requests × {} rounds, {} keep-alive connections, medians",
            self.requests, self.rounds, self.connections
        );
        println!("  direct   {drps:>9.0} req/s   p50 {dp50:.3} ms   p99 {dp99:.3} ms");
        println!("  proxied  {prps:>9.0} req/s   p50 {pp50:.3} ms   p99 {pp99:.3} ms");
        println!(
            "  ratio    {:.2}× throughput (goal ≥ 0.8×), p99 {:+.3} ms (goal ≤ +1 ms)",
            prps / drps,
            pp99 - dp99
        );
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
