//! The HTTP/1.1 reverse proxy on the service's loopback listener (hyper:
//! keep-alive and chunked bodies on both sides are its job, not ours).

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::HeaderMap;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::http::uri::PathAndQuery;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::router::Router;
use super::upstream::Upstreams;
use crate::spec::Sticky;

/// What the proxy answers with.
pub type ProxyBody = Either<Tracked, Full<Bytes>>;

/// A backend's response body that keeps its request counted as in flight
/// until the last byte went out (so draining waits for streamed bodies).
pub struct Tracked {
    inner: Incoming,
    _guard: InFlight,
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
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `listener` on `workers` threads, each running a single-threaded
/// runtime, until `shutdown` fires; returns when all have stopped.
///
/// Each thread accepts from the same listening socket, and a connection
/// stays on the thread that took it, with its connections to instances: a
/// request crosses the proxy without waking another thread, which on a
/// multi-threaded runtime cost about a third of the proxy's CPU.
pub fn serve_on_threads(
    listener: std::net::TcpListener,
    router: Arc<Router>,
    shutdown: CancellationToken,
    workers: usize,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut threads = Vec::new();
    for n in 0..workers.max(1) {
        let listener = listener.try_clone()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (router, shutdown) = (router.clone(), shutdown.clone());
        let thread = std::thread::Builder::new()
            .name(format!("kiln-proxy-{n}"))
            .spawn(move || {
                rt.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => serve(listener, router, shutdown).await,
                        Err(e) => tracing::error!(error = %e, "proxy worker cannot listen"),
                    }
                })
            })?;
        threads.push(thread);
    }
    for thread in threads {
        let _ = thread.join();
    }
    Ok(())
}

/// Serves `listener` on the current runtime until `shutdown` fires.
pub async fn serve(listener: TcpListener, router: Arc<Router>, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => return,
        };
        let Ok((stream, client)) = accepted else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let upstreams = Arc::new(Upstreams::new(router.clone()));
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req| handle(upstreams.clone(), client.ip(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
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
    let value = match headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {client}"),
        None => client.to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(X_FORWARDED_FOR, value);
    }
}

const X_FORWARDED_FOR: &str = "x-forwarded-for";

async fn handle(
    upstreams: Arc<Upstreams>,
    client: IpAddr,
    mut req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let live = upstreams.table();
    let (key, new_cookie) = sticky_key(&req, live.table.sticky.as_ref());
    let Some(backend) = upstreams.router().pick(&live, key.as_deref()) else {
        return Ok(plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "kiln proxy: no healthy instance\n",
        ));
    };
    backend.in_flight.fetch_add(1, Ordering::SeqCst);
    let guard = InFlight(backend.in_flight.clone());
    // The instance gets the origin form (`/path?query`), whatever form the
    // client used; the connection already says where it goes.
    if req.uri().authority().is_some() {
        let origin = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *req.uri_mut() = Uri::from(origin);
    }
    strip_hop_by_hop(req.headers_mut());
    forwarded_for(req.headers_mut(), client);
    let started = Instant::now();
    let result = upstreams.send(&backend, req).await;
    let latency = started.elapsed();
    let mut response = match result {
        Ok(mut resp) => {
            backend
                .stats
                .record(latency, resp.status().is_server_error());
            strip_hop_by_hop(resp.headers_mut());
            resp.map(|inner| {
                Either::Left(Tracked {
                    inner,
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
