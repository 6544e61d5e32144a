use super::*;

fn oci() -> OciReference {
    match crate::Reference::parse("oci://r.example/a:1").unwrap() {
        crate::Reference::Oci(oci) => oci,
        _ => unreachable!(),
    }
}

fn manifest(config: &str, layers: &[&str]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|m| serde_json::json!({"mediaType": m, "digest": format!("sha256:{}", "a".repeat(64)), "size": 8}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "config": {"mediaType": config, "digest": format!("sha256:{}", "b".repeat(64)), "size": 2},
        "layers": layers,
    }))
    .unwrap()
}

fn problem(content_type: &str, bytes: &[u8]) -> String {
    wasm_layer(&oci(), content_type, bytes)
        .unwrap_err()
        .to_string()
}

#[test]
fn a_wasm_artifact_has_one_wasm_layer() {
    let layer = wasm_layer(
        &oci(),
        MANIFEST_MEDIA_TYPE,
        &manifest(WASM_CONFIG_MEDIA_TYPE, &[WASM_LAYER_MEDIA_TYPE]),
    )
    .unwrap();
    assert_eq!(layer.media_type, WASM_LAYER_MEDIA_TYPE);
    assert_eq!(layer.size, 8);
}

#[test]
fn other_artifacts_are_named_for_what_they_are() {
    assert_eq!(
        problem(
            MANIFEST_MEDIA_TYPE,
            &manifest(
                "application/vnd.oci.image.config.v1+json",
                &["application/vnd.oci.image.layer.v1.tar+gzip"]
            )
        ),
        "`oci://r.example/a:1` is not a Wasm component artifact: its config media type is \
         `application/vnd.oci.image.config.v1+json`, not `application/vnd.wasm.config.v0+json` (is it a container image?)"
    );
    assert_eq!(
        problem(
            MANIFEST_MEDIA_TYPE,
            &manifest(
                WASM_CONFIG_MEDIA_TYPE,
                &[WASM_LAYER_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE]
            )
        ),
        "`oci://r.example/a:1` is not a Wasm component artifact: it has 2 layers; \
         a Wasm artifact has exactly one `application/wasm` layer"
    );
    assert_eq!(
        problem(
            MANIFEST_MEDIA_TYPE,
            &manifest(WASM_CONFIG_MEDIA_TYPE, &["application/octet-stream"])
        ),
        "`oci://r.example/a:1` is not a Wasm component artifact: its layer media type is \
         `application/octet-stream`, not `application/wasm`"
    );
    assert_eq!(
        problem("application/vnd.oci.image.index.v1+json", b"{}"),
        "`oci://r.example/a:1` is not a Wasm component artifact: it is an image index \
         (`application/vnd.oci.image.index.v1+json`), such as a multi-platform container image"
    );
    assert_eq!(
        problem(MANIFEST_MEDIA_TYPE, b"<html>"),
        "`oci://r.example/a:1` is not a Wasm component artifact: its manifest is not an OCI image manifest \
         (expected value at line 1 column 1)"
    );
}

/// A fake registry for what a real one will not do (lie about sizes):
/// answers each request from `routes` (path → content type, body), then
/// closes. Everything else is tested against `docker-registry` in
/// `tests/all/plugins.rs`.
fn lying_registry(
    routes: Vec<(String, &'static str, Vec<u8>)>,
) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        for _ in 0..routes.len() {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                line.clear();
            }
            let path = request.split(' ').nth(1).unwrap_or("");
            let (_, content_type, body) = routes
                .iter()
                .find(|(p, _, _)| p == path)
                .expect("known path");
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .unwrap();
            stream.write_all(body).unwrap();
        }
    });
    (addr, handle)
}

#[test]
fn a_layer_longer_than_its_manifest_says_is_refused() {
    let layer = b"\0asm\x0d\0\x01\0".to_vec();
    let digest = sha256(&layer);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "config": {"mediaType": WASM_CONFIG_MEDIA_TYPE, "digest": format!("sha256:{}", "b".repeat(64)), "size": 2},
        "layers": [{"mediaType": WASM_LAYER_MEDIA_TYPE, "digest": format!("sha256:{digest}"), "size": 4}],
    }))
    .unwrap();
    let (addr, server) = lying_registry(vec![
        ("/v2/a/manifests/1".into(), MANIFEST_MEDIA_TYPE, manifest),
        (
            format!("/v2/a/blobs/sha256:{digest}"),
            "application/octet-stream",
            layer,
        ),
    ]);
    let oci = match crate::Reference::parse(&format!("oci://{addr}/a:1")).unwrap() {
        crate::Reference::Oci(oci) => oci,
        _ => unreachable!(),
    };
    let err = pull(&Client::new(), &oci, |_| false).unwrap_err();
    server.join().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "`http://{addr}/v2/a/blobs/sha256:{digest}` is larger than 4 bytes, \
             the most kiln downloads for one layer of the size its manifest declares"
        )
    );
}

#[test]
fn a_manifest_that_does_not_hash_to_its_digest_is_refused() {
    let manifest = b"{}".to_vec();
    let claimed = "c".repeat(64);
    let (addr, server) = lying_registry(vec![(
        format!("/v2/a/manifests/sha256:{claimed}"),
        MANIFEST_MEDIA_TYPE,
        manifest.clone(),
    )]);
    let oci = match crate::Reference::parse(&format!("oci://{addr}/a@sha256:{claimed}")).unwrap() {
        crate::Reference::Oci(oci) => oci,
        _ => unreachable!(),
    };
    let err = pull(&Client::new(), &oci, |_| false).unwrap_err();
    server.join().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "`oci://{addr}/a@sha256:{claimed}`: the manifest hashes to `sha256:{}`, but `sha256:{claimed}` was required; \
             it was not stored and will not run",
            sha256(&manifest)
        )
    );
}

/// Answers `requests` requests with `answer(request line, headers)`.
fn scripted_server(
    requests: usize,
    answer: impl Fn(&str, &str) -> String + Send + 'static,
) -> (String, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..requests {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            let mut headers = String::new();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                headers.push_str(&line.to_ascii_lowercase());
                line.clear();
            }
            let request = request.trim().to_owned();
            stream
                .write_all(answer(&request, &headers).as_bytes())
                .unwrap();
            seen.push(request);
        }
        seen
    });
    (addr, handle)
}

fn http(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn a_bearer_challenge_is_answered_with_an_anonymous_token() {
    let manifest =
        String::from_utf8(manifest(WASM_CONFIG_MEDIA_TYPE, &[WASM_LAYER_MEDIA_TYPE])).unwrap();
    let addr = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let realm = addr.clone();
    let (bound, server) = scripted_server(3, move |request, headers| {
        let authorized = headers.contains("authorization: bearer tok123");
        match request {
            "GET /v2/a/manifests/1 HTTP/1.1" if authorized => http(
                "200 OK",
                &format!("Content-Type: {MANIFEST_MEDIA_TYPE}\r\n"),
                &manifest,
            ),
            "GET /v2/a/manifests/1 HTTP/1.1" => http(
                "401 Unauthorized",
                &format!(
                    "WWW-Authenticate: Bearer realm=\"http://{}/token\",service=\"test\"\r\n",
                    realm.get().unwrap()
                ),
                "",
            ),
            "GET /token?scope=repository%3Aa%3Apull&service=test HTTP/1.1" => {
                http("200 OK", "", r#"{"token": "tok123"}"#)
            }
            other => http("404 Not Found", "", other),
        }
    });
    addr.set(bound.clone()).unwrap();
    let oci = match crate::Reference::parse(&format!("oci://{bound}/a:1")).unwrap() {
        crate::Reference::Oci(oci) => oci,
        _ => unreachable!(),
    };
    // The layer is "already stored", so only the manifest is fetched.
    let pulled = pull(&Client::new(), &oci, |_| true).unwrap();
    assert_eq!(pulled.layer.to_hex(), "a".repeat(64));
    assert_eq!(
        server.join().unwrap(),
        [
            "GET /v2/a/manifests/1 HTTP/1.1",
            "GET /token?scope=repository%3Aa%3Apull&service=test HTTP/1.1",
            "GET /v2/a/manifests/1 HTTP/1.1",
        ]
    );
}

#[test]
fn a_refused_token_is_unauthorized() {
    let addr = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let realm = addr.clone();
    let (bound, server) = scripted_server(2, move |request, _| {
        if request.starts_with("GET /token") {
            http("403 Forbidden", "", "")
        } else {
            http(
                "401 Unauthorized",
                &format!(
                    "WWW-Authenticate: Bearer realm=\"http://{}/token\"\r\n",
                    realm.get().unwrap()
                ),
                "",
            )
        }
    });
    addr.set(bound.clone()).unwrap();
    let oci = match crate::Reference::parse(&format!("oci://{bound}/a:1")).unwrap() {
        crate::Reference::Oci(oci) => oci,
        _ => unreachable!(),
    };
    let err = pull(&Client::new(), &oci, |_| true).unwrap_err();
    server.join().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "registry `{bound}` refused access to `a` (HTTP 403); \
             log in with `docker login {bound}` (kiln reads `~/.docker/config.json`)"
        )
    );
}
