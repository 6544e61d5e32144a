//! `container:`, `resources:` and `services:` of a job.

use std::time::Duration;

use super::Decoder;
use crate::ast::{Service, Text};
use crate::container::{ContainerOptions, HealthCheck, Network, PullPolicy, Resources, Volume};
use crate::diagnostic::Diagnostic;
use crate::suggest;
use crate::yaml::{Node, NodeKind, ScalarType};

const CONTAINER_FIELDS: &[&str] = &[
    "user",
    "network",
    "read-only",
    "tmpfs",
    "init",
    "pull",
    "volumes",
];
const RESOURCE_FIELDS: &[&str] = &["memory", "cpus", "pids"];
const SERVICE_FIELDS: &[&str] = &["image", "env", "ports", "command", "health"];
const HEALTH_FIELDS: &[&str] = &["run", "interval", "timeout", "retries"];

/// Docker refuses less than 6 MiB; more than 256 GiB is a typo here.
const MEMORY_RANGE: (u64, u64) = (6 << 20, 256 << 30);
const PIDS_RANGE: (i64, i64) = (16, 1 << 20);
const CPUS_RANGE: (f64, f64) = (0.01, 512.0);

/// Where Docker's engine socket lives on a standard install: `/var/run` is
/// a symlink to `/run` on most systems, so both spellings are listed.
const DOCKER_SOCKETS: &[&str] = &["/var/run/docker.sock", "/run/docker.sock"];

/// The socket a bind of `path` would expose, if any: `path` names the
/// Docker socket or one of the directories above it (`/var/run`, `/run`,
/// `/`), through which a container reaches the socket all the same.
/// Relative paths (inside the workspace) are checked again at run time,
/// where symlinks and `DOCKER_HOST` are resolved.
fn exposed_socket(path: &str) -> Option<String> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.ends_with("/docker.sock") || trimmed == "docker.sock" {
        return Some(path.to_owned());
    }
    if !path.starts_with('/') {
        return None;
    }
    let mut normal = std::path::PathBuf::from("/");
    for part in std::path::Path::new(path).components() {
        match part {
            std::path::Component::Normal(p) => normal.push(p),
            std::path::Component::ParentDir => {
                normal.pop();
            }
            _ => {}
        }
    }
    DOCKER_SOCKETS
        .iter()
        .find(|socket| std::path::Path::new(socket).starts_with(&normal))
        .map(|socket| (*socket).to_owned())
}

impl Decoder {
    /// `container: { user, network, read-only, tmpfs, init, pull, volumes }`.
    pub(super) fn container(&mut self, node: &Node, out: &mut ContainerOptions) {
        let Some(entries) = self.mapping(node, "container") else {
            return;
        };
        let mut tmpfs_given = false;
        for e in entries {
            let v = &e.value;
            match e.key.name.as_str() {
                "user" => {
                    if let Some(t) = self.text(v, "container.user") {
                        if t.value.is_empty() || t.value.contains(char::is_whitespace) {
                            self.push(
                                Diagnostic::error(
                                    "invalid-value",
                                    v.span,
                                    format!("invalid `container.user` `{}`", t.value),
                                )
                                .with_help("write `uid`, `uid:gid` or a user name of the image"),
                            );
                        } else {
                            out.user = Some(t.value);
                        }
                    }
                }
                "network" => {
                    if let Some(t) = self.text(v, "container.network") {
                        match t.value.as_str() {
                            "bridge" => out.network = Network::Bridge,
                            "none" => out.network = Network::None,
                            other => self.choice_error(v, "container.network", other, &["bridge", "none"]),
                        }
                    }
                }
                "read-only" => {
                    out.read_only = self.boolean(v, "container.read-only").unwrap_or(false)
                }
                "init" => out.init = self.boolean(v, "container.init").unwrap_or(true),
                "pull" => {
                    if let Some(t) = self.text(v, "container.pull") {
                        match t.value.as_str() {
                            "if-missing" => out.pull = PullPolicy::IfMissing,
                            "always" => out.pull = PullPolicy::Always,
                            "never" => out.pull = PullPolicy::Never,
                            other => self.choice_error(
                                v,
                                "container.pull",
                                other,
                                &["if-missing", "always", "never"],
                            ),
                        }
                    }
                }
                "tmpfs" => {
                    tmpfs_given = true;
                    for t in self.string_list(v, "a list of absolute paths", "container.tmpfs") {
                        if self.absolute(&t, "container.tmpfs") {
                            out.tmpfs.push(t.value);
                        }
                    }
                }
                "volumes" => {
                    for t in self.string_list(v, "a list of `host:container` mounts", "container.volumes") {
                        if let Some(volume) = self.volume(&t) {
                            out.volumes.push(volume);
                        }
                    }
                }
                "privileged" => self.push(
                    Diagnostic::error(
                        "forbidden",
                        e.key.span,
                        "kiln never runs privileged containers",
                    )
                    .with_help("remove `privileged`; a step that needs it belongs on a dedicated machine, not in CI containers"),
                ),
                _ => self.unknown_field(&e.key, "`container`", CONTAINER_FIELDS),
            }
        }
        if out.read_only && !tmpfs_given {
            out.tmpfs.push("/tmp".into());
        }
    }

    fn choice_error(&mut self, node: &Node, field: &str, found: &str, valid: &[&str]) {
        let mut d = Diagnostic::error(
            "invalid-value",
            node.span,
            format!("unknown value `{found}` for `{field}`"),
        );
        d.help = suggest::help(found, valid.iter().copied(), || {
            Some(format!("use one of: {}", valid.join(", ")))
        });
        self.push(d);
    }

    fn absolute(&mut self, t: &Text, field: &str) -> bool {
        if t.value.starts_with('/') {
            return true;
        }
        self.push(
            Diagnostic::error(
                "invalid-value",
                t.span,
                format!("`{field}` needs an absolute path, found `{}`", t.value),
            )
            .with_help("paths inside the container start with `/`"),
        );
        false
    }

    /// `host:container[:ro|:rw]`; the Docker socket is refused.
    fn volume(&mut self, t: &Text) -> Option<Volume> {
        let parts: Vec<&str> = t.value.split(':').collect();
        let (host, container, mode) = match parts.as_slice() {
            [h, c] => (*h, *c, "rw"),
            [h, c, m] => (*h, *c, *m),
            _ => {
                self.push(
                    Diagnostic::error(
                        "invalid-value",
                        t.span,
                        format!("invalid volume `{}`", t.value),
                    )
                    .with_help(
                        "write `host-path:/container/path` or `host-path:/container/path:ro`",
                    ),
                );
                return None;
            }
        };
        let exposed = exposed_socket(host).or_else(|| {
            let c = container.trim_end_matches('/');
            (c.ends_with("/docker.sock") || c == "docker.sock").then(|| container.to_owned())
        });
        if let Some(socket) = exposed {
            let what = if socket == host || socket == container {
                format!("`{socket}`")
            } else {
                format!("`{host}` contains `{socket}`")
            };
            self.push(
                Diagnostic::error(
                    "forbidden",
                    t.span,
                    format!("kiln never gives a container the Docker socket ({what})"),
                )
                .with_help("bind only the directories the job needs (e.g. `./cache:/cache`); a container that reaches the Docker socket controls the host, so build images outside the pipeline or with a rootless builder"),
            );
            return None;
        }
        if host.is_empty() || !container.starts_with('/') || !matches!(mode, "ro" | "rw") {
            self.push(
                Diagnostic::error(
                    "invalid-value",
                    t.span,
                    format!("invalid volume `{}`", t.value),
                )
                .with_help("write `host-path:/container/path` or `host-path:/container/path:ro`"),
            );
            return None;
        }
        Some(Volume {
            host: host.to_owned(),
            container: container.to_owned(),
            read_only: mode == "ro",
        })
    }

    /// `resources: { memory, cpus, pids }`.
    pub(super) fn resources(&mut self, node: &Node, out: &mut Resources) {
        let Some(entries) = self.mapping(node, "resources") else {
            return;
        };
        for e in entries {
            let v = &e.value;
            match e.key.name.as_str() {
                "memory" => {
                    if let Some(bytes) = self.memory(v) {
                        out.memory = bytes;
                    }
                }
                "cpus" => {
                    if let Some(nano) = self.cpus(v) {
                        out.nano_cpus = nano;
                    }
                }
                "pids" => {
                    if let Some(n) = self.integer(v, "resources.pids", PIDS_RANGE.0, PIDS_RANGE.1) {
                        out.pids = n;
                    }
                }
                _ => self.unknown_field(&e.key, "`resources`", RESOURCE_FIELDS),
            }
        }
    }

    fn memory(&mut self, node: &Node) -> Option<u64> {
        let scalar = node.scalar().filter(|_| !node.is_null());
        let parsed = match scalar.map(|s| (s, s.ty())) {
            Some((_, ScalarType::Int(n))) => u64::try_from(n).ok(),
            Some((s, ScalarType::Str)) => parse_memory(&s.value),
            _ => {
                self.wrong_type(node, "a size like `512m` or `2g`", "resources.memory");
                return None;
            }
        };
        let written = scalar.map_or("", |s| s.value.as_str());
        let Some(bytes) = parsed else {
            self.push(
                Diagnostic::error(
                    "invalid-value",
                    node.span,
                    format!("invalid size `{written}` for `resources.memory`"),
                )
                .with_help("write bytes or a number with a unit: `512k`, `256m`, `2g`"),
            );
            return None;
        };
        if !(MEMORY_RANGE.0..=MEMORY_RANGE.1).contains(&bytes) {
            self.push(
                Diagnostic::error(
                    "out-of-range",
                    node.span,
                    format!("`resources.memory` must be between 6m and 256g, found {written}"),
                )
                .with_help("write a size from `6m` to `256g`, like `512m` or `2g`"),
            );
            return None;
        }
        Some(bytes)
    }

    fn cpus(&mut self, node: &Node) -> Option<u64> {
        let scalar = node.scalar().filter(|_| !node.is_null());
        let value = match scalar.map(|s| (s, s.ty())) {
            Some((_, ScalarType::Int(n))) => n as f64,
            Some((s, ScalarType::Float)) => s.value.parse::<f64>().ok()?,
            _ => {
                self.wrong_type(node, "a number of CPUs like `1.5`", "resources.cpus");
                return None;
            }
        };
        if !(CPUS_RANGE.0..=CPUS_RANGE.1).contains(&value) {
            let written = scalar.map_or("", |s| s.value.as_str());
            self.push(
                Diagnostic::error(
                    "out-of-range",
                    node.span,
                    format!("`resources.cpus` must be between 0.01 and 512, found {written}"),
                )
                .with_help("write a number of CPUs from `0.01` to `512`, like `1.5`"),
            );
            return None;
        }
        Some((value * 1e9).round() as u64)
    }

    /// `services: { NAME: { image, env, ports, command, health } }`.
    pub(super) fn services(&mut self, node: &Node) -> Vec<Service> {
        let Some(entries) = self.mapping(node, "services") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in entries {
            if !is_host_name(&e.key.name) {
                self.push(
                    Diagnostic::error(
                        "invalid-name",
                        e.key.span,
                        format!("invalid service name `{}`", e.key.name),
                    )
                    .with_help("service names are host names: lowercase letters, digits and `-`, starting with a letter"),
                );
                continue;
            }
            let NodeKind::Mapping(fields) = &e.value.kind else {
                self.wrong_type(&e.value, "a mapping of service fields", &e.key.name);
                continue;
            };
            let field = |f: &str| format!("services.{}.{f}", e.key.name);
            let mut service = Service {
                name: e.key.name.clone(),
                span: e.key.span,
                image: None,
                env: Vec::new(),
                ports: Vec::new(),
                command: Vec::new(),
                health: None,
            };
            for f in fields {
                let v = &f.value;
                match f.key.name.as_str() {
                    "image" => service.image = self.text(v, &field("image")),
                    "env" => service.env = self.pairs(v, &field("env")),
                    "ports" => {
                        for t in
                            self.string_list(v, "a list of `host:container` ports", &field("ports"))
                        {
                            if let Some(p) = self.port(&t, &field("ports")) {
                                service.ports.push(p);
                            }
                        }
                    }
                    "command" => {
                        service.command = match &v.kind {
                            NodeKind::Sequence(_) => self
                                .string_list(v, "a list of arguments", &field("command"))
                                .into_iter()
                                .map(|t| t.value)
                                .collect(),
                            _ => self
                                .text(v, &field("command"))
                                .map(|t| t.value.split_whitespace().map(str::to_owned).collect())
                                .unwrap_or_default(),
                        }
                    }
                    "health" => service.health = self.health(v, &field("health")),
                    _ => self.unknown_field(
                        &f.key,
                        &format!("service `{}`", e.key.name),
                        SERVICE_FIELDS,
                    ),
                }
            }
            if service.image.is_none() && !fields.iter().any(|f| f.key.name == "image") {
                self.push(
                    Diagnostic::error(
                        "missing-field",
                        e.key.span,
                        format!("service `{}` has no `image`", e.key.name),
                    )
                    .with_help("add `image:` with the image the service runs"),
                );
            }
            out.push(service);
        }
        out
    }

    fn port(&mut self, t: &Text, field: &str) -> Option<(u16, u16)> {
        let parse = |s: &str| s.parse::<u16>().ok().filter(|p| *p > 0);
        let pair = match t.value.split_once(':') {
            Some((h, c)) => parse(h).zip(parse(c)),
            None => parse(&t.value).map(|p| (p, p)),
        };
        if pair.is_none() {
            self.push(
                Diagnostic::error(
                    "invalid-value",
                    t.span,
                    format!("invalid port `{}` in `{field}`", t.value),
                )
                .with_help("write `HOST:CONTAINER` with ports from 1 to 65535, e.g. `8080:80`"),
            );
        }
        pair
    }

    fn health(&mut self, node: &Node, field: &str) -> Option<HealthCheck> {
        let entries = self.mapping(node, field)?;
        let mut check = HealthCheck {
            command: String::new(),
            interval: Duration::from_millis(500),
            timeout: Duration::from_secs(5),
            retries: 30,
        };
        let mut has_run = false;
        for e in entries {
            let v = &e.value;
            let sub = format!("{field}.{}", e.key.name);
            match e.key.name.as_str() {
                "run" => {
                    if let Some(t) = self.text(v, &sub) {
                        check.command = t.value;
                        has_run = true;
                    }
                }
                "interval" => {
                    if let Some(d) = self.timeout(v, &sub) {
                        check.interval = d;
                    }
                }
                "timeout" => {
                    if let Some(d) = self.timeout(v, &sub) {
                        check.timeout = d;
                    }
                }
                "retries" => {
                    if let Some(n) = self.integer(v, &sub, 1, 1000) {
                        check.retries = n;
                    }
                }
                _ => self.unknown_field(&e.key, &format!("`{field}`"), HEALTH_FIELDS),
            }
        }
        if !has_run {
            self.push(
                Diagnostic::error(
                    "missing-field",
                    node.span,
                    format!("`{field}` has no `run`"),
                )
                .with_help("add `run:` with a command that exits 0 once the service is ready"),
            );
            return None;
        }
        Some(check)
    }
}

/// `512`, `512k`, `256m`, `2g` (also `kb`/`mib`/… spellings), binary units.
fn parse_memory(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n: u64 = text[..digits].parse().ok()?;
    let shift = match &text[digits..] {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

/// Lowercase RFC 1123 label: it becomes a DNS name on the job's network.
fn is_host_name(name: &str) -> bool {
    name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::{exposed_socket, is_host_name, parse_memory};

    #[test]
    fn the_socket_and_every_directory_above_it_are_refused() {
        for path in [
            "/",
            "/var",
            "/var/run",
            "/var/run/",
            "/run",
            "//run/",
            "/var/lib/../run",
            "/run/docker.sock",
            "/srv/docker.sock",
            "docker.sock",
        ] {
            assert!(exposed_socket(path).is_some(), "{path} must be refused");
        }
        assert_eq!(
            exposed_socket("/var/run").as_deref(),
            Some("/var/run/docker.sock")
        );
        for path in [
            "/var/lib",
            "/run/user/1000",
            "/srv/data",
            "./cache",
            "data",
            "/running",
        ] {
            assert_eq!(exposed_socket(path), None, "{path} is harmless");
        }
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("512"), Some(512));
        assert_eq!(parse_memory("64k"), Some(64 << 10));
        assert_eq!(parse_memory("256M"), Some(256 << 20));
        assert_eq!(parse_memory("2gib"), Some(2 << 30));
        assert_eq!(parse_memory("2t"), None);
        assert_eq!(parse_memory("m"), None);
    }

    #[test]
    fn host_names() {
        assert!(is_host_name("web"));
        assert!(is_host_name("db-1"));
        assert!(!is_host_name("Web"));
        assert!(!is_host_name("1db"));
        assert!(!is_host_name("db_1"));
        assert!(!is_host_name("db-"));
    }
}
