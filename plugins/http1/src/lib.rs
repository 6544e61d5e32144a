//! A minimal HTTP/1.1 client over `std::net::TcpStream`: one request per
//! connection (`Connection: close`), plain `http://` only. On wasm32-wasip2
//! std's sockets are `wasi:sockets`, so the host's network grant decides
//! what connects; natively the same code is unit-tested against loopback.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The parts of an `http://host:port/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// Port (80 if the URL has none).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses `http://host[:port][/path]`; the error says what is wrong.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "`{scheme}://` is not supported: use an `http://` URL"
                ));
            }
            None => return Err("expected an `http://host:port/path` URL".into()),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, p) = v6.split_once(']').ok_or("unclosed `[` in the host")?;
            (h, p.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err("the URL has no host".into());
        }
        let port = match port {
            None => 80,
            Some(p) => p.parse().map_err(|_| format!("`{p}` is not a port"))?,
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, e.g. 200.
    pub status: u16,
    /// The body (up to 64 KiB; the rest is dropped).
    pub body: String,
}

/// The biggest response read; a health endpoint or webhook answer is small.
const MAX_RESPONSE: u64 = 64 * 1024;

/// Sends `method path` with `body` (`content_type` if given) and reads the
/// response. Errors are one line: what failed and the address.
pub fn request(
    method: &str,
    url: &Url,
    content_type: Option<&str>,
    body: &[u8],
    timeout: Duration,
) -> Result<Response, String> {
    let addr = format!("{}:{}", url.host, url.port);
    let addrs: Vec<_> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{}`: {e}", url.host))?
        .collect();
    let mut last = None;
    let mut stream = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let mut stream = stream.ok_or_else(|| match last {
        Some(e) => format!("cannot connect to `{addr}`: {e}"),
        None => format!("`{}` resolved to no address", url.host),
    })?;
    // Timeouts are best effort: a sandbox may not support them, and the
    // host's deadline stops the step anyway.
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: kiln\r\nConnection: close\r\nContent-Length: {}\r\n",
        url.path,
        url.host_header(),
        body.len()
    );
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .and_then(|()| stream.flush())
        .map_err(|e| format!("cannot send to `{addr}`: {e}"))?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .map_err(|e| format!("cannot read the answer of `{addr}`: {e}"))?;
    parse_response(&raw).ok_or_else(|| format!("`{addr}` did not answer with HTTP"))
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let text = String::from_utf8_lossy(raw);
    let status_line = text.lines().next()?;
    let mut parts = status_line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some(Response { status, body })
}

/// `s` as a JSON string literal, quotes included.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn urls_parse_with_defaults_and_clear_errors() {
        assert_eq!(
            Url::parse("http://127.0.0.1:9000/hook?x=1").unwrap(),
            Url {
                host: "127.0.0.1".into(),
                port: 9000,
                path: "/hook?x=1".into()
            }
        );
        assert_eq!(
            Url::parse("http://example.test").unwrap(),
            Url {
                host: "example.test".into(),
                port: 80,
                path: "/".into()
            }
        );
        assert_eq!(Url::parse("http://[::1]:8080/a").unwrap().host, "::1");
        assert_eq!(
            Url::parse("https://x/"),
            Err("`https://` is not supported: use an `http://` URL".into())
        );
        assert_eq!(
            Url::parse("x"),
            Err("expected an `http://host:port/path` URL".into())
        );
        assert_eq!(
            Url::parse("http://h:99999/"),
            Err("`99999` is not a port".into())
        );
        assert_eq!(Url::parse("http://:80/"), Err("the URL has no host".into()));
    }

    #[test]
    fn json_strings_escape_quotes_and_controls() {
        assert_eq!(json_string("a\"b\\c\nd\u{1}é"), r#""a\"b\\c\nd\u0001é""#);
    }

    #[test]
    fn a_request_reaches_a_loopback_server() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = vec![0; 4096];
            let mut got = Vec::new();
            // Read the head and the 7-byte body.
            while !String::from_utf8_lossy(&got).contains("\r\n\r\n{\"a\":1}") {
                let n = s.read(&mut buf).unwrap();
                assert_ne!(n, 0, "client closed early");
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
                .unwrap();
            String::from_utf8(got).unwrap()
        });
        let url = Url::parse(&format!("http://127.0.0.1:{port}/hook")).unwrap();
        let r = request(
            "POST",
            &url,
            Some("application/json"),
            b"{\"a\":1}",
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(
            r,
            Response {
                status: 201,
                body: "ok".into()
            }
        );
        let sent = server.join().unwrap();
        assert!(sent.starts_with("POST /hook HTTP/1.1\r\n"), "{sent}");
        assert!(
            sent.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
            "{sent}"
        );
        assert!(
            sent.contains("Content-Type: application/json\r\nContent-Length: 7\r\n")
                || sent.contains("Content-Length: 7\r\nContent-Type: application/json\r\n"),
            "{sent}"
        );
    }

    #[test]
    fn a_closed_port_names_the_address() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let err = request("GET", &url, None, b"", Duration::from_secs(5)).unwrap_err();
        assert!(
            err.starts_with(&format!("cannot connect to `127.0.0.1:{port}`: ")),
            "{err}"
        );
    }

    #[test]
    fn non_http_answers_are_rejected() {
        assert_eq!(parse_response(b"SSH-2.0-x\r\n"), None);
        assert_eq!(
            parse_response(b"HTTP/1.0 503 Busy\r\n\r\n"),
            Some(Response {
                status: 503,
                body: String::new()
            })
        );
    }
}
