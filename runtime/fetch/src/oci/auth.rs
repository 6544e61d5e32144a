//! Registry credentials (`~/.docker/config.json`) and the two challenges of
//! the distribution API: `Basic` and `Bearer` (token service).

use std::path::PathBuf;

use base64::Engine as _;

/// A user name and password (or identity token) for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    /// The `Authorization: Basic …` value.
    pub fn basic(&self) -> String {
        let pair = format!("{}:{}", self.user, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".docker/config.json"))
}

/// The credentials `docker login` stored for `registry`, if any. Only the
/// inline `auths` form is read; credential helpers (`credsStore`) are not
/// run.
pub(crate) fn docker_credentials(registry: &str) -> Option<Credentials> {
    let text = std::fs::read_to_string(docker_config_path()?).ok()?;
    credentials_in(&text, registry)
}

/// Looks `registry` up in a docker config's `auths`, whose keys may be a
/// bare `host[:port]` or a URL (`https://host/v1/`).
pub(crate) fn credentials_in(config: &str, registry: &str) -> Option<Credentials> {
    let doc: serde_json::Value = serde_json::from_str(config).ok()?;
    let auths = doc.get("auths")?.as_object()?;
    let entry = auths.iter().find_map(|(key, value)| {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or("");
        (host == registry).then_some(value)
    })?;
    if let Some(encoded) = entry.get("auth").and_then(|a| a.as_str()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        return Some(Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        });
    }
    let user = entry.get("username")?.as_str()?;
    let password = entry.get("password")?.as_str()?;
    Some(Credentials {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}

/// What a `WWW-Authenticate` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// Send the user name and password.
    Basic,
    /// Fetch a token from `realm` and send it.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut scope = None;
    for (key, value) in params_of(params) {
        match key.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            "scope" => scope = Some(value),
            _ => {}
        }
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
        scope,
    })
}

/// `k="v", k2=v2` pairs; quoted values may contain commas.
fn params_of(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (quoted[..end].to_owned(), &quoted[end + 1..]),
                None => (quoted.to_owned(), ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (after[..end].trim().to_owned(), &after[end..]),
                None => (after.trim().to_owned(), ""),
            }
        };
        out.push((key, value));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved).
pub(crate) fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="basic-realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None, "no realm");
    }

    #[test]
    fn docker_config_auths() {
        // "user:secret" in base64
        let config = r#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "aHViOmh1YnB3"},
            "127.0.0.1:5000": {"auth": "dXNlcjpzZWNyZXQ="},
            "plain.example": {"username": "u", "password": "p"}
        }}"#;
        let creds = credentials_in(config, "127.0.0.1:5000").unwrap();
        assert_eq!(
            creds,
            Credentials {
                user: "user".into(),
                password: "secret".into()
            }
        );
        assert_eq!(creds.basic(), "Basic dXNlcjpzZWNyZXQ=");
        assert_eq!(
            credentials_in(config, "index.docker.io").unwrap().user,
            "hub"
        );
        assert_eq!(
            credentials_in(config, "plain.example").unwrap().password,
            "p"
        );
        assert_eq!(credentials_in(config, "other.example"), None);
        assert_eq!(credentials_in("not json", "x"), None);
    }

    #[test]
    fn query_encoding() {
        assert_eq!(
            encode_query("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
