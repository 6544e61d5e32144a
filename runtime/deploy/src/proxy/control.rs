//! The proxy as its own process: `kiln deploy proxy` serves the listener
//! and takes commands on a Unix socket (one JSON object per line), so the
//! service stays reachable between rollouts and while a crashed kiln is
//! resumed. [`ProxyClient`] is the controller's side.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use super::Traffic;
use super::router::{Router, RoutingTable};
use crate::contract::TrafficStats;
use crate::error::{DeployError, Result};
use crate::plugin::BoxFuture;

/// A command on the control socket.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
enum Command {
    Ping,
    Set { table: RoutingTable },
    Table,
    Stats,
    Reset,
    InFlight { instances: Vec<String> },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Reply {
    ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stats: Option<Vec<TrafficStats>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    table: Option<RoutingTable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    in_flight: Option<usize>,
}

/// Runs a proxy process: serves `listen` on `workers` threads and the
/// control socket on the current runtime until SIGTERM. The listener is
/// bound, and the workers started, before the socket, so a client that can
/// talk to the socket knows the listener is served.
pub async fn run_daemon(listen: std::net::SocketAddr, socket: &Path, workers: usize) -> Result<()> {
    raise_open_file_limit();
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| DeployError::io("listen on", listen.to_string(), e))?;
    let router = Arc::new(Router::new());
    let shutdown = CancellationToken::new();
    let (done_tx, mut done) = tokio::sync::oneshot::channel();
    {
        let (router, shutdown) = (router.clone(), shutdown.clone());
        std::thread::Builder::new()
            .name("kiln-proxy".into())
            .spawn(move || {
                let served = super::serve_on_threads(listener, router, shutdown, workers);
                let _ = done_tx.send(served);
            })
            .map_err(|e| DeployError::io("start the workers of", listen.to_string(), e))?;
    }
    let _ = std::fs::remove_file(socket);
    let control = UnixListener::bind(socket).map_err(|e| DeployError::io("bind", socket, e))?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| DeployError::io("watch signals for", socket, e))?;
    // The traffic side ending on its own is a failure: the process ends
    // with it, so nobody keeps talking to a proxy that no longer serves.
    let early = loop {
        tokio::select! {
            accepted = control.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(serve_control(stream, router.clone()));
                }
            }
            served = &mut done => break Some(served),
            _ = term.recv() => break None,
        }
    };
    shutdown.cancel();
    let _ = std::fs::remove_file(socket);
    let served = match early {
        Some(served) => served,
        None => done.await,
    };
    let served = served.unwrap_or_else(|_| Err(std::io::Error::other("the workers vanished")));
    served.map_err(|e| DeployError::io("serve", listen.to_string(), e))
}

/// Lifts the soft limit on open files to the hard one: every client
/// connection and every connection to an instance is a descriptor, and
/// the common default of 1,024 is a few hundred clients.
fn raise_open_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(maximum)) = (limit.current, limit.maximum)
        && current < maximum
    {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(maximum),
                maximum: Some(maximum),
            },
        );
    }
}

async fn serve_control(stream: UnixStream, router: Arc<Router>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let reply = match serde_json::from_str::<Command>(&line) {
            Err(e) => Reply {
                error: Some(format!("bad command: {e}")),
                ..Reply::default()
            },
            Ok(command) => {
                let mut reply = Reply {
                    ok: true,
                    ..Reply::default()
                };
                match command {
                    Command::Ping => {}
                    Command::Set { table } => Router::set_table(&router, table),
                    Command::Table => reply.table = Some(Router::table(&router)),
                    Command::Stats => reply.stats = Some(Router::stats(&router)),
                    Command::Reset => Router::reset(&router),
                    Command::InFlight { instances } => {
                        reply.in_flight = Some(
                            instances
                                .iter()
                                .map(|i| Router::in_flight(&router, i))
                                .sum(),
                        )
                    }
                }
                reply
            }
        };
        let mut text = serde_json::to_string(&reply).unwrap_or_default();
        text.push('\n');
        if write.write_all(text.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The controller's connection to a proxy process.
pub struct ProxyClient {
    service: String,
    socket: PathBuf,
    conn: tokio::sync::Mutex<Option<BufReader<UnixStream>>>,
}

impl ProxyClient {
    /// A client for the proxy of `service` at `socket` (connects lazily).
    pub fn new(service: &str, socket: &Path) -> Self {
        Self {
            service: service.to_owned(),
            socket: socket.to_owned(),
            conn: tokio::sync::Mutex::new(None),
        }
    }

    /// Waits up to `timeout` for the proxy to answer a ping.
    pub async fn wait_up(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.call(&Command::Ping).await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// The table the proxy routes by now.
    pub async fn current_table(&self) -> Result<RoutingTable> {
        Ok(self.call(&Command::Table).await?.table.unwrap_or_default())
    }

    fn fail(&self, message: String) -> DeployError {
        DeployError::Proxy {
            service: self.service.clone(),
            message,
        }
    }

    async fn call(&self, command: &Command) -> Result<Reply> {
        let mut guard = self.conn.lock().await;
        if guard.is_none() {
            let stream = UnixStream::connect(&self.socket).await.map_err(|e| {
                self.fail(format!(
                    "cannot connect to `{}`: {e}",
                    self.socket.display()
                ))
            })?;
            *guard = Some(BufReader::new(stream));
        }
        let conn = guard.as_mut().expect("just connected");
        let mut text = serde_json::to_string(command).expect("commands serialise");
        text.push('\n');
        let exchange = async {
            conn.get_mut().write_all(text.as_bytes()).await?;
            let mut line = String::new();
            conn.read_line(&mut line).await?;
            Ok::<_, std::io::Error>(line)
        };
        let line = match tokio::time::timeout(Duration::from_secs(5), exchange).await {
            Ok(Ok(line)) if !line.is_empty() => line,
            Ok(Ok(_)) => {
                *guard = None;
                return Err(self.fail("the proxy closed the connection".into()));
            }
            Ok(Err(e)) => {
                *guard = None;
                return Err(self.fail(e.to_string()));
            }
            Err(_) => {
                *guard = None;
                return Err(self.fail("no answer within 5 s".into()));
            }
        };
        let reply: Reply =
            serde_json::from_str(&line).map_err(|e| self.fail(format!("bad reply: {e}")))?;
        match reply.error {
            Some(e) => Err(self.fail(e)),
            None => Ok(reply),
        }
    }
}

impl Traffic for ProxyClient {
    fn set_table(&self, table: RoutingTable) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.call(&Command::Set { table }).await.map(drop) })
    }

    fn stats(&self) -> BoxFuture<'_, Result<Vec<TrafficStats>>> {
        Box::pin(async move { Ok(self.call(&Command::Stats).await?.stats.unwrap_or_default()) })
    }

    fn reset(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.call(&Command::Reset).await.map(drop) })
    }

    fn in_flight(&self, instances: Vec<String>) -> BoxFuture<'_, Result<usize>> {
        Box::pin(async move {
            Ok(self
                .call(&Command::InFlight { instances })
                .await?
                .in_flight
                .unwrap_or(0))
        })
    }
}
