//! The proxy against real loopback backends: body framing, weights,
//! sticky sessions, errors.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::{Backend, Router, RoutingTable, serve};
use crate::spec::Sticky;

/// Answers `VERSION:` + the request body, streamed back chunked (no
/// content length), or a 500 when `version` is `bad`.
async fn backend(version: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: Request<hyper::body::Incoming>| async move {
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let mut text = format!("{version}:").into_bytes();
                        text.extend_from_slice(&body);
                        let mut r = Response::new(two_frames::two(text));
                        if version == "bad" {
                            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                        }
                        Ok::<_, Infallible>(r)
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

/// A body of two frames and no length, so the response is chunked.
mod two_frames {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use hyper::body::Frame;

    pub struct Two(Vec<Vec<u8>>);

    pub fn two(text: Vec<u8>) -> Two {
        let mid = text.len() / 2;
        Two(vec![text[mid..].to_vec(), text[..mid].to_vec()])
    }

    impl hyper::body::Body for Two {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop().map(|b| Ok(Frame::data(Bytes::from(b)))))
        }
    }
}

async fn proxy(table: RoutingTable) -> (SocketAddr, Arc<Router>, CancellationToken) {
    let router = Arc::new(Router::new());
    router.set_table(table);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(serve(l, router.clone(), stop.clone()));
    (addr, router, stop)
}

fn table(backends: &[(&str, SocketAddr)], weight: u8, sticky: Option<Sticky>) -> RoutingTable {
    RoutingTable {
        stable: Some("v1".into()),
        candidate: Some("v2".into()),
        weight,
        backends: backends
            .iter()
            .enumerate()
            .map(|(i, (v, a))| Backend {
                instance: format!("{v}-{i}"),
                version: (*v).into(),
                addr: *a,
            })
            .collect(),
        sticky,
    }
}

async fn send(addr: SocketAddr, header: &str) -> (u16, String) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut req = Request::get(format!("http://{addr}/"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    if let Some((k, v)) = header.split_once(": ") {
        req.headers_mut().insert(
            hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn chunked_bodies_pass_both_ways_on_one_keep_alive_connection() {
    let v1 = backend("v1").await;
    let (addr, _, _stop) = proxy(table(&[("v1", v1)], 0, None)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut answers = String::new();
    for _ in 0..2 {
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            .await
            .unwrap();
        // The chunked answer ends with the zero chunk.
        answers.push_str(&read_until(&mut s, b"0\r\n\r\n").await);
    }
    assert_eq!(answers.matches("HTTP/1.1 200 OK").count(), 2, "{answers}");
    assert_eq!(
        answers.matches("transfer-encoding: chunked").count(),
        2,
        "{answers}"
    );
    // Chunks of `v1:hello world`, split in two frames.
    assert_eq!(
        answers
            .matches("7\r\nv1:hell\r\n7\r\no world\r\n0\r\n\r\n")
            .count(),
        2,
        "{answers}"
    );
}

#[tokio::test]
async fn weights_split_traffic_and_stats_count_errors_per_version() {
    let (v1, bad) = (backend("v1").await, backend("bad").await);
    let mut t = table(&[("v1", v1), ("v2", bad)], 10, None);
    t.candidate = Some("v2".into());
    let (addr, router, _stop) = proxy(t).await;
    let mut v2 = 0;
    for _ in 0..100 {
        let (status, _) = send(addr, "").await;
        v2 += usize::from(status == 500);
    }
    assert_eq!(v2, 10, "exactly the weight's share of every 100 requests");
    let stats = router.stats();
    let s2 = stats.iter().find(|s| s.version == "v2").unwrap();
    assert_eq!((s2.requests, s2.errors), (10, 10));
    let s1 = stats.iter().find(|s| s.version == "v1").unwrap();
    assert_eq!((s1.requests, s1.errors), (90, 0));
    router.reset();
    assert!(router.stats().iter().all(|s| s.requests == 0));
}

#[tokio::test]
async fn a_sticky_header_always_lands_on_the_same_version() {
    let (v1, v2) = (backend("v1").await, backend("v2").await);
    let (addr, _, _stop) = proxy(table(
        &[("v1", v1), ("v2", v2)],
        50,
        Some(Sticky::Header("x-user".into())),
    ))
    .await;
    let mut versions = std::collections::BTreeSet::new();
    for user in 0..20 {
        let first = send(addr, &format!("x-user: u{user}")).await.1;
        for _ in 0..5 {
            assert_eq!(send(addr, &format!("x-user: u{user}")).await.1, first);
        }
        versions.insert(first);
    }
    assert_eq!(versions.len(), 2, "both versions get users at 50 %");
}

#[tokio::test]
async fn no_instance_is_a_503_and_a_dead_one_a_502_counted_as_an_error() {
    let (addr, router, _stop) = proxy(table(&[], 0, None)).await;
    assert_eq!(
        send(addr, "").await,
        (503, "kiln proxy: no healthy instance\n".into())
    );
    let gone = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    router.set_table(table(&[("v1", gone)], 0, None));
    assert_eq!(
        send(addr, "").await,
        (502, "kiln proxy: the instance did not answer\n".into())
    );
    assert_eq!(router.stats()[0].errors, 1);
}

#[tokio::test]
async fn a_sticky_cookie_is_set_once_and_then_followed() {
    let (v1, v2) = (backend("v1").await, backend("v2").await);
    let (addr, _, _stop) = proxy(table(
        &[("v1", v1), ("v2", v2)],
        50,
        Some(Sticky::Cookie("kiln-session".into())),
    ))
    .await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut versions = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let req = Request::get(format!("http://{addr}/"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = client.request(req).await.unwrap();
        let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(
            cookie.starts_with("kiln-session=") && cookie.ends_with("; Path=/; HttpOnly"),
            "{cookie}"
        );
        let first = String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes())
            .into_owned();
        let value = cookie.split(';').next().unwrap().to_owned();
        for _ in 0..3 {
            let (status, body) = send(addr, &format!("cookie: {value}")).await;
            assert_eq!((status, body), (200, first.clone()));
        }
        versions.insert(first);
    }
    assert_eq!(versions.len(), 2, "sessions are spread over both versions");
}

/// Reads an answer from the proxy until it ends with `end`; the proxy must
/// keep the connection open meanwhile.
async fn read_until(conn: &mut TcpStream, end: &[u8]) -> String {
    let mut got = Vec::new();
    let mut buf = vec![0; 4096];
    while !got.ends_with(end) {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "the proxy kept the connection open");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// One GET on an open keep-alive connection to the proxy: the answer's body
/// (the test backends answer chunked).
async fn get_on(conn: &mut TcpStream) -> String {
    conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let text = read_until(conn, b"0\r\n\r\n").await;
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    // `v1:` arrives as two chunks, `v` and `1:`.
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    body.split("\r\n")
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, chunk)| chunk)
        .collect()
}

#[tokio::test]
async fn an_open_client_connection_follows_a_new_table_at_once() {
    // What a blue-green switch relies on: a client that keeps its
    // connection does not stay on the old version.
    let (v1, v2) = (backend("v1").await, backend("v2").await);
    let mut t = table(&[("v1", v1), ("v2", v2)], 0, None);
    let (addr, router, _stop) = proxy(t.clone()).await;
    let mut conn = TcpStream::connect(addr).await.unwrap();
    assert_eq!(get_on(&mut conn).await, "v1:");
    t.weight = 100;
    router.set_table(t.clone());
    assert_eq!(get_on(&mut conn).await, "v2:");
    t.weight = 0;
    router.set_table(t);
    assert_eq!(get_on(&mut conn).await, "v1:");
}

/// How [`counting_backend`] treats each connection.
#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// Answers `ok` to every request, keeping the connection.
    KeepAlive,
    /// Answers once, then closes 50 ms later (a short idle timeout).
    CloseIdle,
    /// Reads a request and closes without answering (it crashed).
    Vanish,
}

/// What a [`counting_backend`] saw.
#[derive(Default)]
struct Counts {
    accepted: std::sync::atomic::AtomicUsize,
    open: std::sync::atomic::AtomicUsize,
    requests: std::sync::atomic::AtomicUsize,
}

impl Counts {
    fn get(&self, n: &std::sync::atomic::AtomicUsize) -> usize {
        n.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A backend that counts connections and requests.
async fn counting_backend(behaviour: Behaviour) -> (SocketAddr, Arc<Counts>) {
    use std::sync::atomic::Ordering::SeqCst;
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let counts = Arc::new(Counts::default());
    let seen = counts.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            seen.accepted.fetch_add(1, SeqCst);
            seen.open.fetch_add(1, SeqCst);
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0; 4096];
                loop {
                    let mut got = Vec::new();
                    while !got.ends_with(b"\r\n\r\n") {
                        let n = s.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            seen.open.fetch_sub(1, SeqCst);
                            return;
                        }
                        got.extend_from_slice(&buf[..n]);
                    }
                    seen.requests.fetch_add(1, SeqCst);
                    if behaviour == Behaviour::Vanish {
                        seen.open.fetch_sub(1, SeqCst);
                        return;
                    }
                    s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .await
                        .unwrap();
                    if behaviour == Behaviour::CloseIdle {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        seen.open.fetch_sub(1, SeqCst);
                        return;
                    }
                }
            });
        }
    });
    (addr, counts)
}

/// `requests` GETs on one client connection, `pause` apart: the status
/// lines.
async fn gets(addr: SocketAddr, requests: usize, pause: std::time::Duration) -> Vec<String> {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let mut answers = Vec::new();
    for _ in 0..requests {
        conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let answer = read_until(&mut conn, b"ok").await;
        answers.push(answer.lines().next().unwrap().to_owned());
        tokio::time::sleep(pause).await;
    }
    answers
}

#[tokio::test]
async fn connections_to_an_instance_are_pooled_across_requests_and_clients() {
    let (v1, counts) = counting_backend(Behaviour::KeepAlive).await;
    let (addr, _, _stop) = proxy(table(&[("v1", v1)], 0, None)).await;
    let answers = gets(addr, 5, std::time::Duration::ZERO).await;
    assert_eq!(answers, ["HTTP/1.1 200 OK"; 5]);
    assert_eq!(counts.get(&counts.accepted), 1);
    // Clients that connect anew for each request share pooled connections.
    for _ in 0..5 {
        assert_eq!(
            gets(addr, 1, std::time::Duration::ZERO).await,
            ["HTTP/1.1 200 OK"]
        );
    }
    assert_eq!(counts.get(&counts.accepted), 1);
}

#[tokio::test]
async fn an_instance_closing_an_idle_connection_costs_no_request() {
    let (v1, counts) = counting_backend(Behaviour::CloseIdle).await;
    let (addr, router, _stop) = proxy(table(&[("v1", v1)], 0, None)).await;
    // Each pause outlasts the backend's idle close.
    let answers = gets(addr, 3, std::time::Duration::from_millis(150)).await;
    assert_eq!(answers, ["HTTP/1.1 200 OK"; 3]);
    assert_eq!(
        counts.get(&counts.accepted),
        3,
        "a new connection for each request after the old one closed"
    );
    assert_eq!(router.stats()[0].errors, 0);
}

/// Answers with the request's head as its body, and a `Connection`
/// header naming one of its own headers.
async fn echo_head_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let mut head = String::new();
                        for (name, value) in req.headers() {
                            head.push_str(&format!("{name}: {}\n", value.to_str().unwrap()));
                        }
                        let mut r = Response::new(Full::new(Bytes::from(head)));
                        r.headers_mut()
                            .insert("connection", "x-backend-only".parse().unwrap());
                        r.headers_mut()
                            .insert("x-backend-only", "1".parse().unwrap());
                        r.headers_mut().insert("x-kept", "1".parse().unwrap());
                        Ok::<_, Infallible>(r)
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn hop_by_hop_headers_stop_at_the_proxy_and_the_client_is_forwarded() {
    let (addr, _, _stop) = proxy(table(&[("v1", echo_head_backend().await)], 0, None)).await;
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, x-client-only\r\n\
          X-Client-Only: 1\r\nKeep-Alive: timeout=5\r\nX-Forwarded-For: 10.0.0.7\r\n\
          X-Kept: 1\r\n\r\n",
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0; 4096];
    while !String::from_utf8_lossy(&got).contains("x-kept: 1\n") {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "the proxy kept the connection open");
        got.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&got).to_ascii_lowercase();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    // What the instance received.
    assert!(body.contains("x-kept: 1\n"), "{body}");
    assert!(
        body.contains("x-forwarded-for: 10.0.0.7, 127.0.0.1\n"),
        "{body}"
    );
    for gone in ["connection:", "keep-alive:", "x-client-only:"] {
        assert!(!body.contains(gone), "{gone} reached the instance: {body}");
    }
    // What the client received.
    assert!(head.contains("x-kept: 1"), "{head}");
    assert!(!head.contains("x-backend-only"), "{head}");
    assert!(!head.contains("connection: x-backend-only"), "{head}");
}

#[tokio::test]
async fn a_request_that_reached_the_instance_is_never_sent_again() {
    let (v1, counts) = counting_backend(Behaviour::Vanish).await;
    let (addr, router, _stop) = proxy(table(&[("v1", v1)], 0, None)).await;
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"POST /pay HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let mut got = vec![0; 1024];
    let n = conn.read(&mut got).await.unwrap();
    let answer = String::from_utf8_lossy(&got[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 502 Bad Gateway"), "{answer}");
    assert_eq!(counts.get(&counts.requests), 1, "sent once, not retried");
    assert_eq!(router.stats()[0].errors, 1);
}

#[tokio::test]
async fn connections_to_an_instance_that_left_the_table_close_at_once() {
    let (v1, counts) = counting_backend(Behaviour::KeepAlive).await;
    let v2 = backend("v2").await;
    let mut t = table(&[("v1", v1), ("v2", v2)], 0, None);
    let (addr, router, _stop) = proxy(t.clone()).await;
    // An idle client keeps its connection to the proxy throughout.
    let _idle_client = {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0; 1024];
        let n = c.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).ends_with("ok"));
        c
    };
    assert_eq!(counts.get(&counts.open), 1, "pooled, open");
    t.backends.retain(|b| b.version == "v2");
    router.set_table(t);
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
    while counts.get(&counts.open) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the pooled connection to the removed instance is still open"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn connect_and_upgrades_are_refused_plainly() {
    let (addr, _, _stop) = proxy(table(&[("v1", backend("v1").await)], 0, None)).await;
    for request in [
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    ] {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(request.as_bytes()).await.unwrap();
        let mut got = vec![0; 1024];
        let n = conn.read(&mut got).await.unwrap();
        let answer = String::from_utf8_lossy(&got[..n]).into_owned();
        assert!(
            answer.starts_with("HTTP/1.1 501 Not Implemented"),
            "{answer}"
        );
        assert!(
            answer.contains("upgrades (WebSocket) are not supported"),
            "{answer}"
        );
    }
}
