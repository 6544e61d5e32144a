//! Plugin references as typed values: what a `uses:` string names and where
//! its bytes come from.
//!
//! | written | kind |
//! |---|---|
//! | `./plugins/notify.wasm`, `../x.wasm`, `/abs/x.wasm`, `x.wasm` | [`Reference::Local`], relative to the workspace |
//! | `kiln/render@1` | [`Reference::Bundled`], shipped with kiln |
//! | `https://host/path/x.wasm#sha256=<hex>` | [`Reference::Https`], digest mandatory |
//! | `oci://registry/repo:tag`, `oci://registry/repo@sha256:<hex>` | [`Reference::Oci`] |
//!
//! Plain `http://` is accepted only for loopback hosts (`127.0.0.0/8`,
//! `localhost`, `[::1]`): tests and local mirrors, never the internet. OCI
//! registries on those hosts are spoken to in plain HTTP for the same reason.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;

use kiln_store::cas::Digest;

use crate::error::ReferenceError;

/// What a `uses:` reference names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    /// A `.wasm` file, relative to the pipeline's workspace unless absolute.
    Local {
        /// The path as written.
        path: PathBuf,
    },
    /// A first-party plugin shipped with kiln: `kiln/<name>@<major>`.
    Bundled {
        /// `render` in `kiln/render@1`.
        name: String,
        /// `1` in `kiln/render@1`.
        major: u32,
    },
    /// A component downloaded over HTTPS (or HTTP on loopback), verified
    /// against the digest the reference carries.
    Https {
        /// The URL without its `#sha256=` fragment.
        url: String,
        /// What the downloaded bytes must hash to.
        digest: Digest,
    },
    /// A Wasm artifact in an OCI registry.
    Oci(OciReference),
}

/// `oci://registry/repository:tag` or `oci://registry/repository@sha256:…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OciReference {
    /// `host[:port]` of the registry.
    pub registry: String,
    /// The repository path inside the registry (`acme/notify`).
    pub repository: String,
    /// A tag (mutable) or a manifest digest (immutable).
    pub selector: OciSelector,
}

/// Which manifest of an OCI repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OciSelector {
    /// `:tag` — resolved to a manifest digest at install time, then pinned.
    Tag(String),
    /// `@sha256:…` — the manifest's digest.
    Digest(Digest),
}

impl OciReference {
    /// Whether the registry is spoken to in plain HTTP (loopback only).
    pub fn plain_http(&self) -> bool {
        is_loopback_host(host_of(&self.registry))
    }

    /// `http://host:port` or `https://host`, the base of the `/v2/` API.
    pub fn base_url(&self) -> String {
        let scheme = if self.plain_http() { "http" } else { "https" };
        format!("{scheme}://{}", self.registry)
    }

    /// The tag or `sha256:…` digest, as the registry API takes it.
    pub fn selector_text(&self) -> String {
        match &self.selector {
            OciSelector::Tag(tag) => tag.clone(),
            OciSelector::Digest(digest) => format!("sha256:{digest}"),
        }
    }

    /// The same repository at another tag or digest.
    pub fn with_selector(&self, selector: OciSelector) -> Self {
        Self {
            selector,
            ..self.clone()
        }
    }
}

impl Reference {
    /// Parses a `uses:` string; the error says what the forms are.
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        let text = text.trim();
        let error = |problem: &str, help: String| ReferenceError {
            reference: text.to_owned(),
            problem: problem.to_owned(),
            help,
        };
        if text.is_empty() {
            return Err(error("it is empty", FORMS.to_owned()));
        }
        if let Some(rest) = text.strip_prefix("oci://") {
            return parse_oci(rest)
                .map(Reference::Oci)
                .map_err(|(p, h)| error(p, h));
        }
        if let Some(rest) = text.strip_prefix("https://") {
            return parse_url("https", rest).map_err(|(p, h)| error(p, h));
        }
        if let Some(rest) = text.strip_prefix("http://") {
            return parse_url("http", rest).map_err(|(p, h)| error(p, h));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(error(
                &format!("`{scheme}://` is not a plugin source"),
                FORMS.to_owned(),
            ));
        }
        if let Some(rest) = text.strip_prefix("kiln/") {
            return parse_bundled(rest).map_err(|(p, h)| error(p, h));
        }
        let local = text.starts_with("./") || text.starts_with("../") || text.starts_with('/');
        if text.ends_with(".wasm") {
            return Ok(Reference::Local { path: text.into() });
        }
        if local {
            return Err(error(
                "a local plugin must be a `.wasm` file",
                "build the component (`cargo build --target wasm32-wasip2`) and point at the `.wasm` it produces".into(),
            ));
        }
        Err(error("it is not a plugin reference", FORMS.to_owned()))
    }

    /// Whether the reference names a file of the user's own (`./x.wasm`).
    pub fn is_local(&self) -> bool {
        matches!(self, Reference::Local { .. })
    }

    /// Whether the reference itself fixes the content's digest
    /// (`#sha256=…`, `@sha256:…`): such a reference can never drift.
    pub fn is_digest_addressed(&self) -> bool {
        matches!(
            self,
            Reference::Https { .. }
                | Reference::Oci(OciReference {
                    selector: OciSelector::Digest(_),
                    ..
                })
        )
    }

    /// One word for where the bytes come from: `local`, `bundled`, `https`, `oci`.
    pub fn source_kind(&self) -> &'static str {
        match self {
            Reference::Local { .. } => "local",
            Reference::Bundled { .. } => "bundled",
            Reference::Https { .. } => "https",
            Reference::Oci(_) => "oci",
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// The canonical text: the key of `kiln.lock` and of the store's index.
/// Parsing it gives back an equal reference.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Local { path } => write!(f, "{}", path.display()),
            Reference::Bundled { name, major } => write!(f, "kiln/{name}@{major}"),
            Reference::Https { url, digest } => write!(f, "{url}#sha256={digest}"),
            Reference::Oci(oci) => write!(f, "{oci}"),
        }
    }
}

impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.repository)?;
        match &self.selector {
            OciSelector::Tag(tag) => write!(f, ":{tag}"),
            OciSelector::Digest(digest) => write!(f, "@sha256:{digest}"),
        }
    }
}

const FORMS: &str = "use a local `.wasm` path (`./plugins/notify.wasm`), a bundled plugin \
     (`kiln/render@1`), `https://host/x.wasm#sha256=<hex>`, or \
     `oci://registry/repo:tag` / `oci://registry/repo@sha256:<hex>`";

type Problem = (&'static str, String);

fn parse_bundled(rest: &str) -> Result<Reference, Problem> {
    let Some((name, version)) = rest.split_once('@') else {
        return Err((
            "a bundled plugin needs its major version",
            format!("write `kiln/{rest}@1`"),
        ));
    };
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if !valid_name {
        return Err((
            "a bundled plugin name is lowercase letters, digits and `-`",
            "for example `kiln/http-health@1`".into(),
        ));
    }
    match version.parse::<u32>() {
        Ok(major) if !version.starts_with('+') => Ok(Reference::Bundled {
            name: name.to_owned(),
            major,
        }),
        _ => {
            let major = version.split('.').next().unwrap_or("");
            let help = if !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()) {
                format!("bundled plugins are chosen by major version only: `kiln/{name}@{major}`")
            } else {
                format!("write the major version as a number: `kiln/{name}@1`")
            };
            Err(("the version after `@` is not a major version number", help))
        }
    }
}

fn parse_url(scheme: &str, rest: &str) -> Result<Reference, Problem> {
    let (location, fragment) = match rest.split_once('#') {
        Some((location, fragment)) => (location, Some(fragment)),
        None => (rest, None),
    };
    let authority = location.split(['/', '?']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return Err((
            "the URL has no host (or carries credentials)",
            format!("write `{scheme}://host/path/plugin.wasm#sha256=<hex>`"),
        ));
    }
    if scheme == "http" && !is_loopback_host(host_of(authority)) {
        return Err((
            "plain `http://` is only allowed for loopback hosts",
            format!("use `https://{rest}`"),
        ));
    }
    let url = format!("{scheme}://{location}");
    let Some(fragment) = fragment else {
        return Err((
            "a downloaded plugin must carry its digest",
            format!(
                "append `#sha256=<64 hex characters>` (`sha256sum plugin.wasm` prints it): `{url}#sha256=…`"
            ),
        ));
    };
    let Some(hex) = fragment.strip_prefix("sha256=") else {
        return Err((
            "the URL fragment must be `#sha256=<hex>`",
            format!("write `{url}#sha256=<64 hex characters>`"),
        ));
    };
    let digest = parse_hex(hex).ok_or((
        "the digest after `#sha256=` is not 64 lowercase hex characters",
        "copy it from `sha256sum plugin.wasm`".to_owned(),
    ))?;
    Ok(Reference::Https { url, digest })
}

fn parse_oci(rest: &str) -> Result<OciReference, Problem> {
    let Some((registry, path)) = rest.split_once('/') else {
        return Err((
            "an OCI reference needs a registry and a repository",
            "write `oci://registry.example/acme/notify:1.0`".into(),
        ));
    };
    if registry.is_empty() || registry.contains('@') {
        return Err((
            "the OCI registry host is missing",
            "write `oci://registry.example/acme/notify:1.0`".into(),
        ));
    }
    let (repository, selector) = if let Some((repository, digest)) = path.split_once('@') {
        let hex = digest.strip_prefix("sha256:").ok_or((
            "an OCI digest must be `@sha256:<hex>`",
            format!("write `oci://{registry}/{repository}@sha256:<64 hex characters>`"),
        ))?;
        let digest = parse_hex(hex).ok_or((
            "the digest after `@sha256:` is not 64 lowercase hex characters",
            "copy the manifest digest that `kiln plugin install` printed".to_owned(),
        ))?;
        (repository, OciSelector::Digest(digest))
    } else {
        // The tag follows the last `:` after the last `/` (a port is in the registry part).
        let last = path.rsplit('/').next().unwrap_or(path);
        let Some((_, tag)) = last.rsplit_once(':') else {
            return Err((
                "an OCI reference needs a tag or a digest",
                format!(
                    "write `oci://{registry}/{path}:<tag>` or `oci://{registry}/{path}@sha256:<hex>`"
                ),
            ));
        };
        let repository = &path[..path.len() - tag.len() - 1];
        if !valid_tag(tag) {
            return Err((
                "the OCI tag is not valid",
                "a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
                    .into(),
            ));
        }
        (repository, OciSelector::Tag(tag.to_owned()))
    };
    if !valid_repository(repository) {
        return Err((
            "the OCI repository name is not valid",
            "a repository is lowercase path components of letters, digits and `._-` separated by `/` (`acme/notify`)".into(),
        ));
    }
    Ok(OciReference {
        registry: registry.to_owned(),
        repository: repository.to_owned(),
        selector,
    })
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_repository(repository: &str) -> bool {
    !repository.is_empty()
        && repository.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric())
                && part.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        })
}

/// 64 lowercase hex characters (one spelling per digest).
pub(crate) fn parse_hex(hex: &str) -> Option<Digest> {
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    hex.parse().ok()
}

/// `host` of `host:port`, `[v6]:port` or `host`.
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// `localhost`, `127.0.0.0/8` and `::1`: the hosts plain HTTP is allowed for.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => v6 == Ipv6Addr::LOCALHOST,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests;
