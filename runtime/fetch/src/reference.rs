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
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn err(text: &str) -> String {
        Reference::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn local_paths() {
        for text in [
            "./plugins/notify.wasm",
            "../x.wasm",
            "/abs/x.wasm",
            "x.wasm",
        ] {
            assert_eq!(
                Reference::parse(text).unwrap(),
                Reference::Local { path: text.into() }
            );
        }
        assert_eq!(
            err("./plugins/notify"),
            "plugin reference `./plugins/notify`: a local plugin must be a `.wasm` file; \
             build the component (`cargo build --target wasm32-wasip2`) and point at the `.wasm` it produces"
        );
    }

    #[test]
    fn bundled_names() {
        assert_eq!(
            Reference::parse("kiln/http-health@1").unwrap(),
            Reference::Bundled {
                name: "http-health".into(),
                major: 1
            }
        );
        assert_eq!(
            err("kiln/render"),
            "plugin reference `kiln/render`: a bundled plugin needs its major version; write `kiln/render@1`"
        );
        assert_eq!(
            err("kiln/render@1.2.0"),
            "plugin reference `kiln/render@1.2.0`: the version after `@` is not a major version number; \
             bundled plugins are chosen by major version only: `kiln/render@1`"
        );
        assert_eq!(
            err("kiln/render@latest"),
            "plugin reference `kiln/render@latest`: the version after `@` is not a major version number; \
             write the major version as a number: `kiln/render@1`"
        );
        assert_eq!(
            err("kiln/Render@1"),
            "plugin reference `kiln/Render@1`: a bundled plugin name is lowercase letters, digits and `-`; \
             for example `kiln/http-health@1`"
        );
    }

    #[test]
    fn https_needs_a_digest() {
        let text = format!("https://plugins.example/notify.wasm#sha256={HEX}");
        assert_eq!(
            Reference::parse(&text).unwrap(),
            Reference::Https {
                url: "https://plugins.example/notify.wasm".into(),
                digest: HEX.parse().unwrap()
            }
        );
        assert_eq!(
            err("https://plugins.example/notify.wasm"),
            "plugin reference `https://plugins.example/notify.wasm`: a downloaded plugin must carry its digest; \
             append `#sha256=<64 hex characters>` (`sha256sum plugin.wasm` prints it): \
             `https://plugins.example/notify.wasm#sha256=…`"
        );
        assert_eq!(
            err("https://plugins.example/notify.wasm#md5=abc"),
            "plugin reference `https://plugins.example/notify.wasm#md5=abc`: the URL fragment must be `#sha256=<hex>`; \
             write `https://plugins.example/notify.wasm#sha256=<64 hex characters>`"
        );
        assert_eq!(
            err(&format!("https://h/x.wasm#sha256={}", &HEX[..10])),
            format!(
                "plugin reference `https://h/x.wasm#sha256={}`: the digest after `#sha256=` is not 64 lowercase hex characters; \
                 copy it from `sha256sum plugin.wasm`",
                &HEX[..10]
            )
        );
        assert_eq!(
            err("https:///x.wasm"),
            "plugin reference `https:///x.wasm`: the URL has no host (or carries credentials); \
             write `https://host/path/plugin.wasm#sha256=<hex>`"
        );
    }

    #[test]
    fn plain_http_only_on_loopback() {
        for host in ["127.0.0.1:8080", "127.9.9.9", "localhost:1", "[::1]:80"] {
            let text = format!("http://{host}/x.wasm#sha256={HEX}");
            assert!(
                matches!(Reference::parse(&text), Ok(Reference::Https { .. })),
                "{text}"
            );
        }
        assert_eq!(
            err(&format!("http://plugins.example/x.wasm#sha256={HEX}")),
            format!(
                "plugin reference `http://plugins.example/x.wasm#sha256={HEX}`: plain `http://` is only allowed for loopback hosts; \
                 use `https://plugins.example/x.wasm#sha256={HEX}`"
            )
        );
        assert!(err(&format!("http://10.0.0.1/x.wasm#sha256={HEX}")).contains("loopback"));
    }

    #[test]
    fn oci_tags_and_digests() {
        let tagged = Reference::parse("oci://127.0.0.1:5000/acme/notify:1.0").unwrap();
        let Reference::Oci(oci) = &tagged else {
            panic!("{tagged:?}")
        };
        assert_eq!(oci.registry, "127.0.0.1:5000");
        assert_eq!(oci.repository, "acme/notify");
        assert_eq!(oci.selector, OciSelector::Tag("1.0".into()));
        assert!(oci.plain_http());
        assert_eq!(oci.base_url(), "http://127.0.0.1:5000");
        assert_eq!(tagged.to_string(), "oci://127.0.0.1:5000/acme/notify:1.0");

        let pinned = Reference::parse(&format!("oci://ghcr.io/acme/notify@sha256:{HEX}")).unwrap();
        let Reference::Oci(oci) = &pinned else {
            panic!("{pinned:?}")
        };
        assert_eq!(oci.selector, OciSelector::Digest(HEX.parse().unwrap()));
        assert!(!oci.plain_http());
        assert_eq!(oci.base_url(), "https://ghcr.io");
        assert!(pinned.is_digest_addressed() && !tagged.is_digest_addressed());
    }

    #[test]
    fn oci_errors() {
        assert_eq!(
            err("oci://ghcr.io/acme/notify"),
            "plugin reference `oci://ghcr.io/acme/notify`: an OCI reference needs a tag or a digest; \
             write `oci://ghcr.io/acme/notify:<tag>` or `oci://ghcr.io/acme/notify@sha256:<hex>`"
        );
        assert_eq!(
            err("oci://ghcr.io"),
            "plugin reference `oci://ghcr.io`: an OCI reference needs a registry and a repository; \
             write `oci://registry.example/acme/notify:1.0`"
        );
        assert_eq!(
            err("oci://ghcr.io/Acme/notify:1"),
            "plugin reference `oci://ghcr.io/Acme/notify:1`: the OCI repository name is not valid; \
             a repository is lowercase path components of letters, digits and `._-` separated by `/` (`acme/notify`)"
        );
        assert_eq!(
            err("oci://ghcr.io/acme/notify:-x"),
            "plugin reference `oci://ghcr.io/acme/notify:-x`: the OCI tag is not valid; \
             a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
        );
        assert_eq!(
            err("oci://ghcr.io/acme/notify@md5:00"),
            "plugin reference `oci://ghcr.io/acme/notify@md5:00`: an OCI digest must be `@sha256:<hex>`; \
             write `oci://ghcr.io/acme/notify@sha256:<64 hex characters>`"
        );
    }

    #[test]
    fn anything_else_lists_the_forms() {
        assert_eq!(
            err("notify"),
            format!("plugin reference `notify`: it is not a plugin reference; {FORMS}")
        );
        assert_eq!(
            err("ftp://x/y.wasm"),
            format!("plugin reference `ftp://x/y.wasm`: `ftp://` is not a plugin source; {FORMS}")
        );
        assert_eq!(
            err("  "),
            format!("plugin reference ``: it is empty; {FORMS}")
        );
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "./a.wasm".to_owned(),
            "kiln/canary@2".to_owned(),
            format!("https://h.example/x.wasm#sha256={HEX}"),
            format!("http://127.0.0.1:9/x.wasm#sha256={HEX}"),
            "oci://localhost:5000/a/b/c:v1".to_owned(),
            format!("oci://r.example/a@sha256:{HEX}"),
        ] {
            let parsed = Reference::parse(&text).unwrap();
            assert_eq!(parsed.to_string(), text);
            assert_eq!(Reference::parse(&parsed.to_string()).unwrap(), parsed);
        }
    }
}
