//! The HTTP/1.1 reverse proxy on the service's loopback listener (hyper:
//! keep-alive and chunked bodies on both sides are its job, not ours).

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::HeaderMap;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::http::uri::PathAndQuery;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::router::{Live, Router, TableView};
use super::upstream::{Lease, Pool};
use crate::spec::Sticky;

/// What the proxy answers with.
pub type ProxyBody = Either<Tracked, Full<Bytes>>;

/// A backend's response body that keeps its request counted as in flight
/// until the last byte went out (so draining waits for streamed bodies),
/// and gives its connection back to the pool then.
pub struct Tracked {
    inner: Incoming,
    lease: Option<Lease>,
    _guard: InFlight,
}

impl Tracked {
    fn finish(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release();
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // A body dropped before its end leaves the connection mid-response:
        // it closes with the lease instead.
        if self.inner.is_end_stream() {
            self.finish();
        }
    }
}

struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(None) = polled {
            self.finish();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `listener` on `workers` threads, each running a single-threaded
/// runtime with its own pool, until `shutdown` fires; returns when all have
/// stopped, with the first error.
///
/// Each thread accepts from the same listening socket, and a connection
/// stays on the thread that took it: a request crosses the proxy without
/// waking another thread, which on a multi-threaded runtime cost about a
/// third of the proxy's CPU. Every runtime is built, and the listener
/// registered with it, before any thread starts, so a proxy that cannot
/// serve fails here rather than leave connections unaccepted.
pub fn serve_on_threads(
    listener: std::net::TcpListener,
    router: Arc<Router>,
    shutdown: CancellationToken,
    workers: usize,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut ready = Vec::new();
    for _ in 0..workers.max(1) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = {
            let _entered = rt.enter();
            TcpListener::from_std(listener.try_clone()?)?
        };
        ready.push((rt, listener));
    }
    let mut threads = Vec::new();
    for (n, (rt, listener)) in ready.into_iter().enumerate() {
        let (router, stop) = (router.clone(), shutdown.clone());
        let thread = std::thread::Builder::new()
            .name(format!("kiln-proxy-{n}"))
            .spawn(move || rt.block_on(serve(listener, router, stop)));
        match thread {
            Ok(thread) => threads.push(thread),
            Err(e) => {
                shutdown.cancel();
                for thread in threads {
                    let _ = thread.join();
                }
                return Err(e);
            }
        }
    }
    let mut panicked = false;
    for thread in threads {
        panicked |= thread.join().is_err();
    }
    if panicked {
        return Err(std::io::Error::other("a proxy worker thread panicked"));
    }
    Ok(())
}

/// Serves `listener` on the current runtime until `shutdown` fires, with
/// one pool of connections to the instances.
pub async fn serve(listener: TcpListener, router: Arc<Router>, shutdown: CancellationToken) {
    let pool = Pool::new();
    tokio::spawn(pool.clone().sweep(router.clone(), shutdown.clone()));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => return,
        };
        let (stream, client) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, say: retrying at once would spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = Arc::new(ClientConnection {
            router: router.clone(),
            pool: pool.clone(),
            client: client.ip(),
            table: Mutex::new(TableView::new(&router)),
        });
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(conn.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A client that takes this long to send a request head is disconnected.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// What a request needs of the connection it came on.
struct ClientConnection {
    router: Arc<Router>,
    pool: Arc<Pool>,
    client: IpAddr,
    table: Mutex<TableView>,
}

impl ClientConnection {
    fn table(&self) -> (u64, Arc<Live>) {
        self.table
            .lock()
            .expect("not poisoned")
            .current(&self.router)
    }
}

static SESSIONS: AtomicU64 = AtomicU64::new(1);

fn plain(status: StatusCode, text: &str) -> Response<ProxyBody> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from(text.to_owned()))));
    *r.status_mut() = status;
    r
}

/// The sticky key of a request, and a new cookie value when the request
/// has none.
fn sticky_key(
    req: &Request<Incoming>,
    sticky: Option<&Sticky>,
) -> (Option<String>, Option<String>) {
    match sticky {
        None => (None, None),
        Some(Sticky::Header(name)) => (
            req.headers()
                .get(name.as_str())
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            None,
        ),
        Some(Sticky::Cookie(name)) => {
            let found = req
                .headers()
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|c| c.trim().split_once('='))
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.to_owned());
            match found {
                Some(v) => (Some(v), None),
                None => {
                    let fresh = format!(
                        "{}-{}",
                        std::process::id(),
                        SESSIONS.fetch_add(1, Ordering::Relaxed)
                    );
                    (Some(fresh.clone()), Some(fresh))
                }
            }
        }
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) are for one connection, not the
/// next; hyper frames bodies itself.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Removes the hop-by-hop headers, and those `Connection` names as such.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove(name);
    }
}

/// Appends the client's address to `X-Forwarded-For`, as reverse proxies
/// do, so the service can tell its clients apart behind the proxy.
fn forwarded_for(headers: &mut HeaderMap, client: IpAddr) {
    let mut hops: Vec<String> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect();
    hops.push(client.to_string());
    let value = hops.join(", ");
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(X_FORWARDED_FOR, value);
    }
}

const X_FORWARDED_FOR: &str = "x-forwarded-for";

async fn handle(
    conn: Arc<ClientConnection>,
    mut req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    if req.method() == Method::CONNECT || req.headers().contains_key(header::UPGRADE) {
        return Ok(plain(
            StatusCode::NOT_IMPLEMENTED,
            "kiln proxy: CONNECT and protocol upgrades (WebSocket) are not supported\n",
        ));
    }
    let (mut generation, mut live) = conn.table();
    let (key, new_cookie) = sticky_key(&req, live.table.sticky.as_ref());
    // Counted in flight before the table is read again: a swap that
    // happened meanwhile is seen and the request goes by the new table, so
    // draining an instance that left it never misses this request.
    let (backend, guard) = loop {
        let Some(backend) = conn.router.pick(&live, key.as_deref()) else {
            return Ok(plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "kiln proxy: no healthy instance\n",
            ));
        };
        backend.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(backend.in_flight.clone());
        let (now, newest) = conn.table();
        if now == generation || newest.routes_to(&backend) {
            break (backend, guard);
        }
        (generation, live) = (now, newest);
    };
    // The instance gets the origin form (`/path?query`), whatever form the
    // client used; the connection already says where it goes. The `Host`
    // it names is the one the instance sees.
    if let Some(authority) = req.uri().authority().cloned() {
        let origin = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *req.uri_mut() = Uri::from(origin);
        if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
            req.headers_mut().insert(header::HOST, host);
        }
    }
    strip_hop_by_hop(req.headers_mut());
    if !req.headers().contains_key(header::HOST)
        && let Ok(host) = HeaderValue::from_str(&backend.backend.addr.to_string())
    {
        // HTTP/1.1 requires one; an HTTP/1.0 client may not have sent it.
        req.headers_mut().insert(header::HOST, host);
    }
    forwarded_for(req.headers_mut(), conn.client);
    let started = Instant::now();
    let result = conn.pool.send(&backend, req).await;
    let latency = started.elapsed();
    let mut response = match result {
        Ok((mut resp, lease)) => {
            backend
                .stats
                .record(latency, resp.status().is_server_error());
            strip_hop_by_hop(resp.headers_mut());
            resp.map(|inner| {
                Either::Left(Tracked {
                    inner,
                    lease: Some(lease),
                    _guard: guard,
                })
            })
        }
        Err(e) => {
            backend.stats.record(latency, true);
            tracing::debug!(instance = %backend.backend.instance, error = %e, "backend failed");
            plain(
                StatusCode::BAD_GATEWAY,
                "kiln proxy: the instance did not answer\n",
            )
        }
    };
    if let (Some(value), Some(Sticky::Cookie(name))) = (new_cookie, live.table.sticky.as_ref())
        && let Ok(v) = HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly"))
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}
