//! The HTTP client behind `https://` references and OCI registries: ureq
//! with rustls, blocking (resolution happens before a run starts), with
//! timeouts and size limits so a hostile server can neither hang kiln nor
//! fill its memory.

use std::time::Duration;

use ureq::http::{self, Request, Response};
use ureq::{Agent, Body};

use crate::error::{Error, Result};

/// The largest component kiln downloads (components are held in memory to
/// be hashed, stored and compiled).
pub const MAX_COMPONENT: u64 = 256 * 1024 * 1024;
/// The largest manifest, token or error body kiln reads.
pub(crate) const MAX_SMALL: u64 = 4 * 1024 * 1024;

/// A reusable HTTP client (connection pool, TLS roots).
#[derive(Debug, Clone)]
pub struct Client {
    /// For the internet: environment proxies honoured.
    remote: Agent,
    /// For loopback hosts: never through a proxy.
    loopback: Agent,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// A client with kiln's timeouts (10 s to connect, 5 min per request).
    pub fn new() -> Self {
        let agent = |proxy: bool| {
            let mut config = Agent::config_builder()
                .http_status_as_error(false)
                .timeout_connect(Some(Duration::from_secs(10)))
                .timeout_global(Some(Duration::from_secs(300)))
                .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")));
            if !proxy {
                config = config.proxy(None);
            }
            config.build().new_agent()
        };
        Self {
            remote: agent(true),
            loopback: agent(false),
        }
    }

    /// Sends `request`; a transport failure is [`Error::Http`]. Any status
    /// is returned: callers decide what an error status means.
    pub(crate) fn send(&self, request: Request<&[u8]>) -> Result<Response<Body>> {
        let url = request.uri().to_string();
        let loopback = request
            .uri()
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .is_some_and(crate::reference::is_loopback_host);
        let agent = if loopback {
            &self.loopback
        } else {
            &self.remote
        };
        agent.run(request).map_err(|source| Error::Http {
            url,
            source: Box::new(source),
        })
    }

    /// `GET url` with extra headers.
    pub(crate) fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Response<Body>> {
        let mut builder = Request::get(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        self.send(builder.body(&[][..]).map_err(|e| bad_url(url, e))?)
    }
}

pub(crate) fn bad_url(url: &str, err: http::Error) -> Error {
    Error::Http {
        url: url.to_owned(),
        source: Box::new(ureq::Error::Http(err)),
    }
}

/// Reads a body of at most `limit` bytes.
pub(crate) fn read_body(
    response: &mut Response<Body>,
    url: &str,
    limit: u64,
    what: &'static str,
) -> Result<Vec<u8>> {
    if let Some(length) = content_length(response)
        && length > limit
    {
        return Err(Error::TooLarge {
            url: url.to_owned(),
            limit,
            what,
        });
    }
    response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => Error::TooLarge {
                url: url.to_owned(),
                limit,
                what,
            },
            other => Error::Http {
                url: url.to_owned(),
                source: Box::new(other),
            },
        })
}

fn content_length(response: &Response<Body>) -> Option<u64> {
    response
        .headers()
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The error for a non-success status, with the start of the server's message.
pub(crate) fn status_error(mut response: Response<Body>, url: &str) -> Error {
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_SMALL)
        .lossy_utf8(true)
        .read_to_string()
        .unwrap_or_default();
    let line = body.lines().map(str::trim).find(|l| !l.is_empty());
    let detail = match line {
        Some(line) => {
            let short: String = line.chars().take(200).collect();
            format!(": {short}")
        }
        None => String::new(),
    };
    Error::Status {
        url: url.to_owned(),
        status,
        detail,
    }
}

/// Downloads an `https://` (or loopback `http://`) component.
pub(crate) fn fetch_component(client: &Client, url: &str) -> Result<Vec<u8>> {
    let mut response = client.get(url, &[])?;
    if !response.status().is_success() {
        return Err(status_error(response, url));
    }
    read_body(&mut response, url, MAX_COMPONENT, "component")
}
