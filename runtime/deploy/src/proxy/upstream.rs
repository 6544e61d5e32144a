//! Connections to the instances: one pool per serving runtime.
//!
//! `kiln deploy proxy` runs one single-threaded runtime per core, each with
//! its own pool, so a request takes and returns a connection without a
//! lock any other thread holds and without waking another thread. A
//! connection goes back to the pool only once its response body has gone
//! out in full (HTTP/1.1 carries one exchange at a time), so a pooled
//! connection is always free. A sweeper closes connections to instances
//! that left the table as soon as the table changes, and connections idle
//! for [`IDLE_TIMEOUT`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::router::{LiveBackend, Router};

/// A pooled connection unused this long is closed.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per instance and pool; more are closed.
const MAX_IDLE_PER_INSTANCE: usize = 64;
/// How long connecting to an instance may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request did not get an answer from its instance.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("no connection within {} s", CONNECT_TIMEOUT.as_secs())]
    ConnectTimeout,
    #[error(transparent)]
    Http(hyper::Error),
}

struct Idle {
    sender: SendRequest<Incoming>,
    since: Instant,
}

/// Idle connections, per instance in the table.
pub(crate) struct Pool {
    idle: Mutex<Vec<(Arc<LiveBackend>, Vec<Idle>)>>,
}

/// A connection lent to one exchange; [`Lease::release`] returns it once
/// the response body is complete. Dropped otherwise, it closes.
pub(crate) struct Lease {
    pool: Arc<Pool>,
    backend: Arc<LiveBackend>,
    sender: SendRequest<Incoming>,
}

impl Lease {
    /// The exchange is over: the connection may carry the next one.
    pub fn release(self) {
        self.pool.put(&self.backend, self.sender);
    }
}

impl Pool {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends `req` to `backend` on a pooled connection, or on a new one
    /// when none is free or the instance had closed the pooled one.
    pub async fn send(
        self: &Arc<Self>,
        backend: &Arc<LiveBackend>,
        mut req: Request<Incoming>,
    ) -> Result<(Response<Incoming>, Lease), UpstreamError> {
        while let Some(mut sender) = self.take(backend) {
            match sender.try_send_request(req).await {
                Ok(response) => return Ok((response, self.lease(backend, sender))),
                Err(mut e) => match e.take_message() {
                    // The connection closed before the request went out:
                    // nothing reached the instance, so another may carry it.
                    Some(unsent) => req = unsent,
                    None => return Err(UpstreamError::Http(e.into_error())),
                },
            }
        }
        let mut sender = connect(backend).await?;
        let response = sender
            .send_request(req)
            .await
            .map_err(UpstreamError::Http)?;
        Ok((response, self.lease(backend, sender)))
    }

    fn lease(self: &Arc<Self>, backend: &Arc<LiveBackend>, sender: SendRequest<Incoming>) -> Lease {
        Lease {
            pool: self.clone(),
            backend: backend.clone(),
            sender,
        }
    }

    /// The most recently used free connection to `backend`.
    fn take(&self, backend: &Arc<LiveBackend>) -> Option<SendRequest<Incoming>> {
        let mut idle = self.idle.lock().expect("not poisoned");
        let (_, conns) = idle.iter_mut().find(|(b, _)| Arc::ptr_eq(b, backend))?;
        while let Some(conn) = conns.pop() {
            if conn.sender.is_ready() && conn.since.elapsed() < IDLE_TIMEOUT {
                return Some(conn.sender);
            }
        }
        None
    }

    fn put(&self, backend: &Arc<LiveBackend>, sender: SendRequest<Incoming>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().expect("not poisoned");
        let at = match idle.iter().position(|(b, _)| Arc::ptr_eq(b, backend)) {
            Some(at) => at,
            None => {
                idle.push((backend.clone(), Vec::new()));
                idle.len() - 1
            }
        };
        let conns = &mut idle[at].1;
        if conns.len() == MAX_IDLE_PER_INSTANCE {
            conns.remove(0);
        }
        conns.push(Idle {
            sender,
            since: Instant::now(),
        });
    }

    /// Closes connections to instances no longer in `router`'s table, and
    /// those idle too long or closed by their instance.
    fn prune(&self, router: &Router) {
        let live = router.live();
        let mut idle = self.idle.lock().expect("not poisoned");
        idle.retain(|(b, _)| live.routes_to(b));
        for (_, conns) in idle.iter_mut() {
            conns.retain(|c| !c.sender.is_closed() && c.since.elapsed() < IDLE_TIMEOUT);
        }
    }

    /// Prunes at every table change and every second until `shutdown`.
    pub async fn sweep(self: Arc<Self>, router: Arc<Router>, shutdown: CancellationToken) {
        loop {
            let changed = router.changed();
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.cancelled() => return,
            }
            self.prune(&router);
        }
    }
}

async fn connect(backend: &LiveBackend) -> Result<SendRequest<Incoming>, UpstreamError> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(backend.backend.addr))
        .await
        .map_err(|_| UpstreamError::ConnectTimeout)?
        .map_err(UpstreamError::Connect)?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(UpstreamError::Http)?;
    // Ends when the sender is dropped or the instance closes the connection.
    tokio::spawn(connection);
    Ok(sender)
}
