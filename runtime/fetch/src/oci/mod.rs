//! A small client for the OCI distribution API, just what Wasm artifacts
//! need: resolve a tag or digest to a manifest, check it is a Wasm
//! component artifact (config `application/vnd.wasm.config.v0+json`, one
//! `application/wasm` layer), download and verify the layer, and push one.
//!
//! Registries on loopback hosts are spoken to in plain HTTP; all others in
//! HTTPS. Anonymous access works, and `Basic` or `Bearer` (token service)
//! challenges are answered with the credentials `docker login` stored.

mod auth;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use ureq::Body;
use ureq::http::{Request, Response};

use kiln_store::cas::Digest;

use crate::error::{Error, Result};
use crate::http::{Client, MAX_COMPONENT, MAX_SMALL, bad_url, read_body, status_error};
use crate::reference::{OciReference, OciSelector};

/// Media type of an OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of the config blob of a Wasm artifact.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Media type of the component layer.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";

const INDEX_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// A content descriptor in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// What a registry said a reference is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// SHA-256 of the manifest (what `@sha256:` names).
    pub manifest: Digest,
    /// SHA-256 of the component layer.
    pub layer: Digest,
    /// The layer's media type (`application/wasm`).
    pub media_type: String,
    /// The component, verified against `layer`; `None` when the caller
    /// already had it and it was not downloaded.
    pub bytes: Option<Vec<u8>>,
}

/// What [`push`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The manifest's digest (pull it as `oci://…@sha256:<manifest>`).
    pub manifest: Digest,
    /// The component layer's digest.
    pub layer: Digest,
}

/// Resolves `oci` to its manifest and component digest, downloading the
/// layer unless `have(layer)` says it is already stored.
pub fn pull(client: &Client, oci: &OciReference, have: impl Fn(&Digest) -> bool) -> Result<Pulled> {
    let mut session = Session::new(client, oci, "pull");
    let url = format!(
        "{}/v2/{}/manifests/{}",
        oci.base_url(),
        oci.repository,
        oci.selector_text()
    );
    let accept = [
        MANIFEST_MEDIA_TYPE,
        INDEX_MEDIA_TYPES[0],
        INDEX_MEDIA_TYPES[1],
    ]
    .join(", ");
    let mut response = session.request("GET", &url, &[("Accept", &accept)], &[])?;
    if !response.status().is_success() {
        return Err(not_found_or(response, &url, oci));
    }
    let content_type = header(&response, "content-type").unwrap_or_default();
    let bytes = read_body(&mut response, &url, MAX_SMALL, "manifest")?;
    let manifest_digest = sha256(&bytes);
    if let OciSelector::Digest(expected) = oci.selector
        && expected != manifest_digest
    {
        return Err(Error::DigestMismatch {
            reference: oci.to_string(),
            what: "manifest",
            expected,
            actual: manifest_digest,
        });
    }
    let layer = wasm_layer(oci, &content_type, &bytes)?;
    let layer_digest = crate::digest_text::parse(&layer.digest).ok_or_else(|| {
        not_wasm(
            oci,
            format!("its layer digest `{}` is not a sha256 digest", layer.digest),
        )
    })?;
    if layer.size > MAX_COMPONENT {
        return Err(Error::TooLarge {
            url: format!(
                "{}/v2/{}/blobs/{}",
                oci.base_url(),
                oci.repository,
                layer.digest
            ),
            limit: MAX_COMPONENT,
            what: "component",
        });
    }
    let bytes = if have(&layer_digest) {
        None
    } else {
        Some(session.blob(&layer, layer_digest)?)
    };
    Ok(Pulled {
        manifest: manifest_digest,
        layer: layer_digest,
        media_type: layer.media_type,
        bytes,
    })
}

/// Pushes `component` as a Wasm artifact to `oci` (a tag, or a digest that
/// must then be the manifest's). The config is minimal and has a fixed
/// creation time, so the same bytes always give the same manifest digest.
pub fn push(client: &Client, oci: &OciReference, component: &[u8]) -> Result<Pushed> {
    let mut session = Session::new(client, oci, "pull,push");
    let layer = sha256(component);
    let config = serde_json::to_vec(&serde_json::json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [format!("sha256:{layer}")],
    }))
    .expect("config serializes");
    let config_digest = sha256(&config);
    session.upload(&config, config_digest)?;
    session.upload(component, layer)?;
    let manifest = serde_json::to_vec(&Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.into()),
        config: Descriptor {
            media_type: WASM_CONFIG_MEDIA_TYPE.into(),
            digest: format!("sha256:{config_digest}"),
            size: config.len() as u64,
        },
        layers: vec![Descriptor {
            media_type: WASM_LAYER_MEDIA_TYPE.into(),
            digest: format!("sha256:{layer}"),
            size: component.len() as u64,
        }],
    })
    .expect("manifest serializes");
    let manifest_digest = sha256(&manifest);
    if let OciSelector::Digest(expected) = oci.selector
        && expected != manifest_digest
    {
        return Err(Error::DigestMismatch {
            reference: oci.to_string(),
            what: "manifest",
            expected,
            actual: manifest_digest,
        });
    }
    let url = format!(
        "{}/v2/{}/manifests/{}",
        oci.base_url(),
        oci.repository,
        oci.selector_text()
    );
    let response = session.request(
        "PUT",
        &url,
        &[("Content-Type", MANIFEST_MEDIA_TYPE)],
        &manifest,
    )?;
    if !response.status().is_success() {
        return Err(status_error(response, &url));
    }
    Ok(Pushed {
        manifest: manifest_digest,
        layer,
    })
}

/// Checks the manifest is a Wasm component artifact and returns its layer.
fn wasm_layer(oci: &OciReference, content_type: &str, bytes: &[u8]) -> Result<Descriptor> {
    let kind = content_type.split(';').next().unwrap_or("").trim();
    let index = |found: &str| INDEX_MEDIA_TYPES.contains(&found);
    if index(kind) {
        return Err(not_wasm(
            oci,
            format!("it is an image index (`{kind}`), such as a multi-platform container image"),
        ));
    }
    let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| {
        not_wasm(
            oci,
            format!("its manifest is not an OCI image manifest ({e})"),
        )
    })?;
    if let Some(media_type) = manifest.media_type.as_deref()
        && index(media_type)
    {
        return Err(not_wasm(
            oci,
            format!(
                "it is an image index (`{media_type}`), such as a multi-platform container image"
            ),
        ));
    }
    if manifest.config.media_type != WASM_CONFIG_MEDIA_TYPE {
        return Err(not_wasm(
            oci,
            format!(
                "its config media type is `{}`, not `{WASM_CONFIG_MEDIA_TYPE}` (is it a container image?)",
                manifest.config.media_type
            ),
        ));
    }
    let [layer] = <[Descriptor; 1]>::try_from(manifest.layers).map_err(|layers| {
        not_wasm(
            oci,
            format!(
                "it has {} layers; a Wasm artifact has exactly one `{WASM_LAYER_MEDIA_TYPE}` layer",
                layers.len()
            ),
        )
    })?;
    if layer.media_type != WASM_LAYER_MEDIA_TYPE {
        return Err(not_wasm(
            oci,
            format!(
                "its layer media type is `{}`, not `{WASM_LAYER_MEDIA_TYPE}`",
                layer.media_type
            ),
        ));
    }
    Ok(layer)
}

fn not_wasm(oci: &OciReference, problem: String) -> Error {
    Error::NotWasmArtifact {
        reference: oci.to_string(),
        problem,
    }
}

/// A 404 on a manifest is the user's most likely mistake: say so plainly.
fn not_found_or(response: Response<Body>, url: &str, oci: &OciReference) -> Error {
    if response.status().as_u16() == 404 {
        return Error::Status {
            url: url.to_owned(),
            status: 404,
            detail: format!(
                ": `{}` has no `{}` in registry `{}`",
                oci.repository,
                oci.selector_text(),
                oci.registry
            ),
        };
    }
    status_error(response, url)
}

fn sha256(bytes: &[u8]) -> Digest {
    Digest::from_bytes(Sha256::digest(bytes).into())
}

fn header(response: &Response<Body>, name: &str) -> Option<String> {
    Some(response.headers().get(name)?.to_str().ok()?.to_owned())
}

/// Requests to one repository, remembering the authorization that worked.
struct Session<'a> {
    client: &'a Client,
    oci: &'a OciReference,
    actions: &'static str,
    authorization: Option<String>,
}

impl<'a> Session<'a> {
    fn new(client: &'a Client, oci: &'a OciReference, actions: &'static str) -> Self {
        Self {
            client,
            oci,
            actions,
            authorization: None,
        }
    }

    /// Sends a request, answering one authentication challenge.
    fn request(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response<Body>> {
        let mut challenged = false;
        loop {
            let mut builder = Request::builder().method(method).uri(url);
            for (name, value) in headers {
                builder = builder.header(*name, *value);
            }
            if let Some(authorization) = &self.authorization {
                builder = builder.header("Authorization", authorization);
            }
            let response = self
                .client
                .send(builder.body(body).map_err(|e| bad_url(url, e))?)?;
            let status = response.status().as_u16();
            if status == 401 && !challenged {
                challenged = true;
                self.authenticate(&response)?;
                continue;
            }
            if status == 401 || status == 403 {
                return Err(self.unauthorized(status));
            }
            return Ok(response);
        }
    }

    fn unauthorized(&self, status: u16) -> Error {
        Error::Unauthorized {
            registry: self.oci.registry.clone(),
            repository: self.oci.repository.clone(),
            status,
        }
    }

    fn authenticate(&mut self, response: &Response<Body>) -> Result<()> {
        let challenge = header(response, "www-authenticate")
            .as_deref()
            .and_then(auth::parse_challenge)
            .ok_or_else(|| self.unauthorized(401))?;
        let credentials = auth::docker_credentials(&self.oci.registry);
        match challenge {
            auth::Challenge::Basic => {
                let credentials = credentials.ok_or_else(|| self.unauthorized(401))?;
                self.authorization = Some(credentials.basic());
            }
            auth::Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scope = scope.unwrap_or_else(|| {
                    format!("repository:{}:{}", self.oci.repository, self.actions)
                });
                let mut url = format!("{realm}?scope={}", auth::encode_query(&scope));
                if let Some(service) = service {
                    url.push_str(&format!("&service={}", auth::encode_query(&service)));
                }
                let basic = credentials.map(|c| c.basic());
                let mut headers = Vec::new();
                if let Some(basic) = &basic {
                    headers.push(("Authorization", basic.as_str()));
                }
                let mut response = self.client.get(&url, &headers)?;
                if !response.status().is_success() {
                    return Err(self.unauthorized(response.status().as_u16()));
                }
                let body = read_body(&mut response, &url, MAX_SMALL, "manifest")?;
                let token: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|_| self.unauthorized(401))?;
                let token = token
                    .get("token")
                    .or_else(|| token.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| self.unauthorized(401))?;
                self.authorization = Some(format!("Bearer {token}"));
            }
        }
        Ok(())
    }

    /// Downloads a blob and checks it hashes to `digest`.
    fn blob(&mut self, layer: &Descriptor, digest: Digest) -> Result<Vec<u8>> {
        let url = format!(
            "{}/v2/{}/blobs/{}",
            self.oci.base_url(),
            self.oci.repository,
            layer.digest
        );
        let mut response = self.request("GET", &url, &[], &[])?;
        if !response.status().is_success() {
            return Err(status_error(response, &url));
        }
        let bytes = read_body(
            &mut response,
            &url,
            layer.size.min(MAX_COMPONENT),
            // A registry sending more than the manifest declared is lying
            // about one of the two; stop reading at the declared size.
            "layer of the size its manifest declares",
        )?;
        let actual = sha256(&bytes);
        if actual != digest {
            return Err(Error::DigestMismatch {
                reference: self.oci.to_string(),
                what: "downloaded layer",
                expected: digest,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Monolithic upload: `POST …/blobs/uploads/`, then `PUT <location>?digest=`.
    /// A blob the registry already has is not sent again.
    fn upload(&mut self, bytes: &[u8], digest: Digest) -> Result<()> {
        let base = self.oci.base_url();
        let head = format!("{base}/v2/{}/blobs/sha256:{digest}", self.oci.repository);
        if self.request("HEAD", &head, &[], &[])?.status().is_success() {
            return Ok(());
        }
        let start = format!("{base}/v2/{}/blobs/uploads/", self.oci.repository);
        let response = self.request("POST", &start, &[("Content-Length", "0")], &[])?;
        if !response.status().is_success() {
            return Err(status_error(response, &start));
        }
        let location = header(&response, "location").ok_or_else(|| Error::Status {
            url: start.clone(),
            status: response.status().as_u16(),
            detail: ": the registry gave no upload location".into(),
        })?;
        let location = if location.starts_with('/') {
            format!("{base}{location}")
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{separator}digest=sha256%3A{digest}");
        let length = bytes.len().to_string();
        let response = self.request(
            "PUT",
            &url,
            &[
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", &length),
            ],
            bytes,
        )?;
        if !response.status().is_success() {
            return Err(status_error(response, &url));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
