//! `deploy:` of a job: target, service, what runs, strategy, health,
//! approval and proxy.

use std::net::SocketAddr;
use std::time::Duration;

use super::Decoder;
use crate::ast::{Deploy, PluginUse, Text};
use crate::diagnostic::Diagnostic;
use crate::plan::{DeployTarget, ProxyConfig, Readiness, Sticky};
use crate::suggest;
use crate::yaml::{Key, Node};

const FIELDS: &[&str] = &[
    "target",
    "service",
    "command",
    "image",
    "version",
    "port",
    "replicas",
    "env",
    "readiness",
    "strategy",
    "health",
    "approval",
    "approval-timeout",
    "proxy",
];
const TARGETS: &[&str] = &["process", "docker"];
const PLUGIN_FIELDS: &[&str] = &["uses", "with"];
const READINESS_FIELDS: &[&str] = &["path", "timeout"];
const PROXY_FIELDS: &[&str] = &["listen", "sticky"];

/// Where the proxy listens when `proxy.listen` is not given.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// How long an approval gate waits by default.
const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(3600);
/// More instances than this on one machine is a typo.
const MAX_REPLICAS: i64 = 64;

/// `[a-z][a-z0-9-]*`: safe in instance names, file names and container names.
fn is_valid_service(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.len() <= 48
}

impl Decoder {
    /// Decodes `deploy:` of job `job`.
    pub(super) fn deploy(&mut self, key: &Key, node: &Node, job: &str) -> Option<Deploy> {
        let entries = self.mapping(node, "deploy")?;
        let mut deploy = Deploy {
            span: key.span,
            target: DeployTarget::Process,
            service: String::new(),
            command: None,
            image: None,
            version: None,
            port: None,
            replicas: 1,
            env: Vec::new(),
            readiness: Readiness::default(),
            strategy: None,
            health: None,
            manual_approval: false,
            approval_timeout: DEFAULT_APPROVAL_TIMEOUT,
            proxy: ProxyConfig {
                listen: DEFAULT_LISTEN.parse().expect("a valid default address"),
                sticky: None,
            },
        };
        let mut target_span = None;
        let mut service = false;
        for e in entries {
            let v = &e.value;
            match e.key.name.as_str() {
                "target" => {
                    target_span = Some(v.span);
                    if let Some(t) = self.target(v) {
                        deploy.target = t;
                    }
                }
                "service" => {
                    service = true;
                    if let Some(name) = self.service(v) {
                        deploy.service = name;
                    }
                }
                "command" => deploy.command = self.text(v, "deploy.command"),
                "image" => deploy.image = self.text(v, "deploy.image"),
                "version" => deploy.version = self.text(v, "deploy.version"),
                "port" => {
                    deploy.port = self
                        .integer(v, "deploy.port", 1, 65535)
                        .and_then(|p| u16::try_from(p).ok())
                }
                "replicas" => {
                    deploy.replicas = self
                        .integer(v, "deploy.replicas", 1, MAX_REPLICAS)
                        .unwrap_or(1)
                }
                "env" => deploy.env = self.pairs(v, "deploy.env"),
                "readiness" => deploy.readiness = self.readiness(v),
                "strategy" => deploy.strategy = self.plugin_use(v, "deploy.strategy"),
                "health" => deploy.health = self.plugin_use(v, "deploy.health"),
                "approval" => deploy.manual_approval = self.approval(v),
                "approval-timeout" => {
                    if let Some(d) = self.timeout(v, "deploy.approval-timeout") {
                        deploy.approval_timeout = d;
                    }
                }
                "proxy" => self.proxy(v, &mut deploy.proxy),
                name if name.starts_with("x-") => {}
                _ => self.unknown_field(&e.key, "`deploy`", FIELDS),
            }
        }
        if !service {
            self.push(
                Diagnostic::error(
                    "missing-field",
                    key.span,
                    format!("`deploy` of job `{job}` has no `service`"),
                )
                .with_help("name the service being deployed: `service: web`"),
            );
        }
        self.what_runs(key, &deploy, target_span);
        Some(deploy)
    }

    /// Exactly one of `command` / `image`, matching the target; a command
    /// needs a `version` (an image's tag is its version).
    fn what_runs(&mut self, key: &Key, deploy: &Deploy, target_span: Option<crate::Span>) {
        match (&deploy.command, &deploy.image, deploy.target) {
            (Some(_), Some(image), _) => self.push(
                Diagnostic::error(
                    "conflicting-fields",
                    image.span,
                    "`deploy` has both `command` and `image`; a service runs one",
                )
                .with_help("use `command:` with `target: process`, `image:` with `target: docker`"),
            ),
            (None, None, target) => self.push(
                Diagnostic::error("missing-field", key.span, "`deploy` has neither `command` nor `image`")
                    .with_help(match target {
                        DeployTarget::Process => "give the command that starts one instance: `command: ./server --port $PORT`",
                        DeployTarget::Docker => "give the image to run: `image: app:1.2`",
                    }),
            ),
            (Some(command), None, DeployTarget::Docker) => self.push(
                Diagnostic::error(
                    "invalid-value",
                    target_span.unwrap_or(command.span),
                    "`target: docker` runs an `image`, not a `command`",
                )
                .with_help("use `target: process` to run a command on this machine"),
            ),
            (None, Some(image), DeployTarget::Process) => self.push(
                Diagnostic::error(
                    "invalid-value",
                    image.span,
                    "`target: process` runs a `command`, not an `image`",
                )
                .with_help("add `target: docker` to run the image in containers"),
            ),
            (Some(command), None, DeployTarget::Process) if deploy.version.is_none() => self.push(
                Diagnostic::error(
                    "missing-field",
                    command.span,
                    "a `command` deployment needs a `version`",
                )
                .with_help("label what is being rolled out: `version: ${{ needs.build.outputs.version }}`"),
            ),
            _ => {}
        }
    }

    fn target(&mut self, node: &Node) -> Option<DeployTarget> {
        let text = self.text(node, "deploy.target")?;
        match text.value.as_str() {
            "process" => Some(DeployTarget::Process),
            "docker" => Some(DeployTarget::Docker),
            other => {
                let mut d = Diagnostic::error(
                    "invalid-value",
                    text.span,
                    format!("unknown deployment target `{other}`"),
                );
                d.help = suggest::help(other, TARGETS.iter().copied(), || {
                    Some("use `process` or `docker`".into())
                });
                self.push(d);
                None
            }
        }
    }

    fn service(&mut self, node: &Node) -> Option<String> {
        let text = self.text(node, "deploy.service")?;
        if is_valid_service(&text.value) {
            return Some(text.value);
        }
        self.push(
            Diagnostic::error(
                "invalid-name",
                text.span,
                format!("invalid service name `{}`", text.value),
            )
            .with_help("service names start with a lowercase letter and contain only `a-z`, `0-9` and `-` (at most 48)"),
        );
        None
    }

    fn approval(&mut self, node: &Node) -> bool {
        let Some(text) = self.text(node, "deploy.approval") else {
            return false;
        };
        match text.value.as_str() {
            "manual" => true,
            "none" => false,
            other => {
                let mut d = Diagnostic::error(
                    "invalid-value",
                    text.span,
                    format!("unknown approval `{other}`"),
                );
                d.help = suggest::help(other, ["manual", "none"], || {
                    Some("use `manual` (wait for `kiln approve`) or `none`".into())
                });
                self.push(d);
                false
            }
        }
    }

    fn plugin_use(&mut self, node: &Node, field: &str) -> Option<PluginUse> {
        // `strategy: kiln/rolling@1` is `{ uses: kiln/rolling@1 }`.
        if node.scalar().is_some() && !node.is_null() {
            return Some(PluginUse {
                uses: self.text(node, field)?,
                with: Vec::new(),
            });
        }
        let entries = self.mapping(node, field)?;
        let mut uses: Option<Text> = None;
        let mut with = Vec::new();
        for e in entries {
            match e.key.name.as_str() {
                "uses" => uses = self.text(&e.value, &format!("{field}.uses")),
                "with" => with = self.pairs(&e.value, &format!("{field}.with")),
                _ => self.unknown_field(&e.key, &format!("`{field}`"), PLUGIN_FIELDS),
            }
        }
        let Some(uses) = uses else {
            self.push(
                Diagnostic::error(
                    "missing-field",
                    node.span,
                    format!("`{field}` has no `uses`"),
                )
                .with_help("name the component: `uses: kiln/rolling@1`"),
            );
            return None;
        };
        Some(PluginUse { uses, with })
    }

    fn readiness(&mut self, node: &Node) -> Readiness {
        let mut out = Readiness::default();
        let Some(entries) = self.mapping(node, "deploy.readiness") else {
            return out;
        };
        for e in entries {
            match e.key.name.as_str() {
                "path" => {
                    if let Some(t) = self.text(&e.value, "deploy.readiness.path") {
                        if t.value.starts_with('/') {
                            out.path = Some(t.value);
                        } else {
                            self.push(
                                Diagnostic::error(
                                    "invalid-value",
                                    t.span,
                                    format!("readiness path `{}` does not start with `/`", t.value),
                                )
                                .with_help(format!("write `/{}`", t.value)),
                            );
                        }
                    }
                }
                "timeout" => {
                    if let Some(d) = self.timeout(&e.value, "deploy.readiness.timeout") {
                        out.timeout = d;
                    }
                }
                _ => self.unknown_field(&e.key, "`deploy.readiness`", READINESS_FIELDS),
            }
        }
        out
    }

    fn proxy(&mut self, node: &Node, out: &mut ProxyConfig) {
        let Some(entries) = self.mapping(node, "deploy.proxy") else {
            return;
        };
        for e in entries {
            match e.key.name.as_str() {
                "listen" => {
                    if let Some(addr) = self.listen(&e.value) {
                        out.listen = addr;
                    }
                }
                "sticky" => out.sticky = self.sticky(&e.value),
                _ => self.unknown_field(&e.key, "`deploy.proxy`", PROXY_FIELDS),
            }
        }
    }

    fn listen(&mut self, node: &Node) -> Option<SocketAddr> {
        let text = self.text(node, "deploy.proxy.listen")?;
        match text.value.parse::<SocketAddr>() {
            Ok(addr) if addr.ip().is_loopback() => Some(addr),
            Ok(addr) => {
                self.push(
                    Diagnostic::error(
                        "invalid-value",
                        text.span,
                        format!("the proxy listens on loopback only, not `{}`", addr.ip()),
                    )
                    .with_help(format!("use `127.0.0.1:{}`", addr.port())),
                );
                None
            }
            Err(_) => {
                self.push(
                    Diagnostic::error(
                        "invalid-value",
                        text.span,
                        format!("`{}` is not an `ip:port` address", text.value),
                    )
                    .with_help("write e.g. `127.0.0.1:8080`"),
                );
                None
            }
        }
    }

    fn sticky(&mut self, node: &Node) -> Option<Sticky> {
        let text = self.text(node, "deploy.proxy.sticky")?;
        let sticky = match text.value.split_once(':') {
            None if text.value == "cookie" => Some(Sticky::Cookie("kiln-session".into())),
            Some(("cookie", name)) if !name.is_empty() => Some(Sticky::Cookie(name.to_owned())),
            Some(("header", name)) if !name.is_empty() => {
                Some(Sticky::Header(name.to_ascii_lowercase()))
            }
            _ => None,
        };
        if sticky.is_none() {
            self.push(
                Diagnostic::error(
                    "invalid-value",
                    text.span,
                    format!("unknown sticky-session mode `{}`", text.value),
                )
                .with_help("use `cookie`, `cookie:NAME` or `header:NAME`"),
            );
        }
        sticky
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid_service;

    #[test]
    fn service_names() {
        for ok in ["web", "api-2", "a"] {
            assert!(is_valid_service(ok), "{ok}");
        }
        for bad in ["", "Web", "2web", "web_api", "-x", &"a".repeat(49)] {
            assert!(!is_valid_service(bad), "{bad}");
        }
    }
}
