//! Connections to the instances, owned by one client connection.
//!
//! HTTP/1.1 carries one request at a time on a connection, on both sides of
//! the proxy. So each client connection keeps one connection of its own per
//! instance it talks to: a request needs no shared pool (no lock held by
//! other connections, no checkout), and a client sending one request after
//! another finds its connection free. The routing table is cached here too
//! and reloaded only when its generation changes.

use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::router::{Live, LiveBackend, Router};

/// Why a request did not get an answer from its instance.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error(transparent)]
    Http(hyper::Error),
}

/// One client connection's view of the proxy: its table and its
/// connections to instances.
pub(crate) struct Upstreams {
    router: Arc<Router>,
    state: Mutex<State>,
}

struct State {
    generation: u64,
    live: Arc<Live>,
    idle: Vec<(Arc<LiveBackend>, SendRequest<Incoming>)>,
}

impl Upstreams {
    pub fn new(router: Arc<Router>) -> Self {
        let generation = router.generation();
        let live = router.live();
        Self {
            router,
            state: Mutex::new(State {
                generation,
                live,
                idle: Vec::new(),
            }),
        }
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The table to route the next request by: the newest one.
    pub fn table(&self) -> Arc<Live> {
        let now = self.router.generation();
        let mut state = self.state.lock().expect("not poisoned");
        if state.generation != now {
            let live = self.router.live();
            // Connections to instances that left the table close now.
            state.idle.retain(|(b, _)| live.routes_to(b));
            state.live = live;
            state.generation = now;
        }
        state.live.clone()
    }

    /// Sends `req` to `backend` on this connection's connection to it, or
    /// on a new one when there is none or the instance closed it.
    pub async fn send(
        &self,
        backend: &Arc<LiveBackend>,
        mut req: Request<Incoming>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let idle = {
            let mut state = self.state.lock().expect("not poisoned");
            let at = state.idle.iter().position(|(b, _)| Arc::ptr_eq(b, backend));
            at.map(|i| state.idle.swap_remove(i).1)
        };
        if let Some(mut sender) = idle
            && sender.ready().await.is_ok()
        {
            match sender.try_send_request(req).await {
                Ok(response) => {
                    self.keep(backend, sender);
                    return Ok(response);
                }
                Err(mut e) => match e.take_message() {
                    // The instance closed the idle connection before the
                    // request went out: nothing reached it, so a new
                    // connection may carry it.
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
        self.keep(backend, sender);
        Ok(response)
    }

    /// Keeps `sender` for the next request to `backend`. It is free again
    /// once the response body has gone out, which on HTTP/1.1 is before the
    /// client can send its next request.
    fn keep(&self, backend: &Arc<LiveBackend>, sender: SendRequest<Incoming>) {
        self.state
            .lock()
            .expect("not poisoned")
            .idle
            .push((backend.clone(), sender));
    }
}

async fn connect(backend: &LiveBackend) -> Result<SendRequest<Incoming>, UpstreamError> {
    let stream = TcpStream::connect(backend.backend.addr)
        .await
        .map_err(UpstreamError::Connect)?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(UpstreamError::Http)?;
    // Ends when the sender is dropped or the instance closes the connection.
    tokio::spawn(connection);
    Ok(sender)
}
