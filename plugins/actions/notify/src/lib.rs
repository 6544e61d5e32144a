//! `kiln/notify`: POSTs a JSON payload to the `url` input over plain
//! HTTP/1.1. Without a `payload` input it sends
//! `{"message", "status", "job", "step", "run"}`. A non-2xx answer fails
//! the step; the answer's status is the `status` output.

use std::time::Duration;

use http1::{Url, json_string};
use kiln_sdk::{Action, ActionError, Capability, Context, InputSpec, Metadata, Outputs};

/// The action.
pub struct Notify;

impl Action for Notify {
    fn metadata() -> Metadata {
        Metadata::new(
            "notify",
            env!("CARGO_PKG_VERSION"),
            "POSTs a JSON payload to a URL",
        )
        .input(InputSpec::required(
            "url",
            "`http://host:port/path` to POST to",
        ))
        .input(InputSpec::with_default(
            "message",
            "the `message` field",
            "",
        ))
        .input(InputSpec::with_default(
            "status",
            "the `status` field, e.g. `${{ needs.test.result }}`",
            "",
        ))
        .input(InputSpec::optional(
            "payload",
            "a JSON document to send instead of the default fields",
        ))
        .input(InputSpec::with_default(
            "timeout",
            "connect and read timeout",
            "10s",
        ))
        .output("status", "the HTTP status the server answered")
        .capability(Capability::Network(
            "the `url` input's host:port — grant it in `permissions.network`".into(),
        ))
    }

    fn run(ctx: &Context) -> Result<Outputs, ActionError> {
        let raw_url: String = ctx.input("url")?;
        let url = Url::parse(&raw_url)
            .map_err(|e| ActionError::invalid_input(format!("input `url` is `{raw_url}`: {e}")))?;
        let timeout: Duration = ctx.input("timeout")?;
        let body = match ctx.optional_input::<String>("payload")? {
            Some(p) => p,
            None => payload(ctx)?,
        };
        let response = http1::request(
            "POST",
            &url,
            Some("application/json"),
            body.as_bytes(),
            timeout,
        )
        .map_err(ActionError::failed)?;
        if !(200..300).contains(&response.status) {
            let body = response.body.trim();
            let body: String = body.chars().take(200).collect();
            return Err(ActionError::failed(format!(
                "`{raw_url}` answered {}: {body}",
                response.status
            )));
        }
        kiln_sdk::host::info(format!("POST {raw_url}: {}", response.status));
        Ok(Outputs::new().set("status", response.status))
    }
}

kiln_sdk::action!(Notify);

/// The default payload.
pub fn payload(ctx: &Context) -> Result<String, ActionError> {
    let message: String = ctx.input("message")?;
    let status: String = ctx.input("status")?;
    Ok(format!(
        "{{\"message\":{},\"status\":{},\"job\":{},\"step\":{},\"run\":{}}}",
        json_string(&message),
        json_string(&status),
        json_string(&ctx.job),
        json_string(&ctx.step),
        ctx.run_id
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_sdk::testing::context;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A loopback server answering one request with `answer`; returns the port
    /// and a handle yielding the request body.
    fn server(answer: &'static str) -> (u16, std::thread::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0; 4096];
            loop {
                let n = s.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .unwrap()
                        .parse()
                        .unwrap();
                    if body.len() >= len {
                        s.write_all(answer.as_bytes()).unwrap();
                        return body.to_string();
                    }
                }
                assert_ne!(n, 0);
            }
        });
        (port, h)
    }

    #[test]
    fn metadata_asks_for_the_network_only() {
        let m = Notify::metadata();
        assert!(
            matches!(m.capabilities.as_slice(), [Capability::Network(what)] if what.contains("`url`")),
            "{:?}",
            m.capabilities
        );
    }

    #[test]
    fn posts_the_default_payload() {
        let (port, h) = server("HTTP/1.1 204 No Content\r\n\r\n");
        let ctx = context::<Notify>()
            .input("url", &format!("http://127.0.0.1:{port}/hook"))
            .input("message", "build \"7\" done")
            .input("status", "success")
            .build();
        let out = Notify::run(&ctx).unwrap();
        assert_eq!(out.get("status"), Some("204"));
        assert_eq!(
            h.join().unwrap(),
            r#"{"message":"build \"7\" done","status":"success","job":"test","step":"test","run":1}"#
        );
    }

    #[test]
    fn a_server_error_fails_the_step_with_its_answer() {
        let (port, h) = server("HTTP/1.1 500 Internal\r\n\r\nboom\n");
        let url = format!("http://127.0.0.1:{port}/");
        let ctx = context::<Notify>()
            .input("url", &url)
            .input("payload", "{}")
            .build();
        assert_eq!(
            Notify::run(&ctx),
            Err(ActionError::Failed(format!("`{url}` answered 500: boom")))
        );
        assert_eq!(h.join().unwrap(), "{}");
    }

    #[test]
    fn a_bad_url_is_an_invalid_input() {
        let ctx = context::<Notify>().input("url", "ftp://x/").build();
        assert_eq!(
            Notify::run(&ctx),
            Err(ActionError::InvalidInput(
                "input `url` is `ftp://x/`: `ftp://` is not supported: use an `http://` URL".into()
            ))
        );
    }
}
