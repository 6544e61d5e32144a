//! kiln's isolation defaults as Docker settings: one function per kind of
//! container, so every container kiln creates is hardened the same way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::models::{ContainerCreateBody, HostConfig};
use kiln_pipeline::{ContainerOptions, Network};

use crate::error::{DockerError, Result};

/// Where the workspace appears in every container.
pub const WORKSPACE: &str = "/workspace";
/// Where kiln's per-container scripts and output files appear.
pub const KILN_DIR: &str = "/kiln";

/// What a container gets mounted and joined.
pub(crate) struct Mounts<'a> {
    pub workspace: &'a Path,
    pub kiln_dir: &'a Path,
    /// The job's network (services), if any.
    pub network: Option<&'a str>,
}

/// The settings no pipeline can loosen: never privileged, no new
/// privileges (setuid binaries cannot raise them), Docker's default seccomp
/// and capability set, limits on memory (no extra swap), CPU and processes.
pub(crate) fn host_config(options: &ContainerOptions) -> HostConfig {
    let r = &options.resources;
    let memory = i64::try_from(r.memory).unwrap_or(i64::MAX);
    HostConfig {
        privileged: Some(false),
        security_opt: Some(vec!["no-new-privileges:true".into()]),
        memory: Some(memory),
        memory_swap: Some(memory),
        nano_cpus: Some(i64::try_from(r.nano_cpus).unwrap_or(i64::MAX)),
        pids_limit: Some(i64::from(r.pids)),
        init: Some(options.init),
        readonly_rootfs: Some(options.read_only),
        tmpfs: (!options.tmpfs.is_empty()).then(|| {
            options
                .tmpfs
                .iter()
                .map(|p| (p.clone(), "rw,nosuid,nodev,size=256m".to_owned()))
                .collect()
        }),
        ..Default::default()
    }
}

/// A step or job container: workspace at `/workspace`, kiln's dir at
/// `/kiln`, extra volumes checked against the Docker socket.
pub(crate) fn step_container(
    image: &str,
    options: &ContainerOptions,
    mounts: &Mounts<'_>,
    labels: HashMap<String, String>,
    cmd: Vec<String>,
) -> Result<ContainerBody> {
    let mut host = host_config(options);
    let mut binds = vec![
        format!("{}:{WORKSPACE}", mounts.workspace.display()),
        format!("{}:{KILN_DIR}", mounts.kiln_dir.display()),
    ];
    for volume in &options.volumes {
        let path = refuse_socket(&mounts.workspace.join(&volume.host))?;
        let mode = if volume.read_only { "ro" } else { "rw" };
        binds.push(format!("{}:{}:{mode}", path.display(), volume.container));
    }
    host.binds = Some(binds);
    host.network_mode = Some(match (options.network, mounts.network) {
        (Network::None, _) => "none".to_owned(),
        (Network::Bridge, Some(network)) => network.to_owned(),
        (Network::Bridge, None) => "bridge".to_owned(),
    });
    Ok(ContainerBody(ContainerCreateBody {
        image: Some(image.to_owned()),
        user: options.user.clone(),
        working_dir: Some(WORKSPACE.to_owned()),
        entrypoint: Some(cmd),
        cmd: Some(Vec::new()),
        labels: Some(labels),
        host_config: Some(host),
        ..Default::default()
    }))
}

/// A create body, wrapped so callers cannot forget the hardening.
pub(crate) struct ContainerBody(pub ContainerCreateBody);

/// Refuses a bind that would expose the engine's socket: the socket itself
/// or any directory above it (`/run`, `/var/run`, `/`), however it is
/// spelled (a symlink in the workspace, `..`). The bind's source is
/// canonicalized and compared with the canonical socket paths (the
/// standard ones and `DOCKER_HOST`'s); any Unix socket named like Docker's
/// is refused too. Returns the canonical source, which is what gets
/// mounted, so a symlink swapped after this check changes nothing.
fn refuse_socket(path: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| normalize(path));
    let refuse = |why: String| {
        Err(DockerError::Refused(format!(
            "kiln never gives a container the Docker socket (`{}` {why}); bind only the directories the job needs",
            path.display(),
        )))
    };
    if let Some(socket) = engine_sockets().iter().find(|s| s.starts_with(&canonical)) {
        let why = if *socket == canonical {
            format!("is `{}`", socket.display())
        } else {
            format!(
                "is `{}`, which contains `{}`",
                canonical.display(),
                socket.display()
            )
        };
        return refuse(why);
    }
    let is_socket = std::fs::metadata(&canonical).is_ok_and(|m| m.file_type().is_socket());
    let named = canonical
        .file_name()
        .is_some_and(|n| n.to_string_lossy().contains("docker.sock"));
    if is_socket && named {
        return refuse(format!("is the socket `{}`", canonical.display()));
    }
    Ok(canonical)
}

/// Every path the engine's socket may have: the standard ones and
/// `DOCKER_HOST`'s, each as written and canonical.
fn engine_sockets() -> Vec<PathBuf> {
    let mut written: Vec<PathBuf> = vec!["/var/run/docker.sock".into(), "/run/docker.sock".into()];
    if let Some(path) = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
    {
        written.push(path);
    }
    let mut all = Vec::new();
    for path in written {
        if let Ok(canonical) = std::fs::canonicalize(&path) {
            all.push(canonical);
        }
        all.push(normalize(&path));
    }
    all
}

/// `.` and `..` removed without touching the file system (for a path that
/// does not exist yet, which Docker would create).
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::refuse_socket;
    use std::path::Path;

    #[test]
    fn the_socket_and_the_directories_above_it_are_refused_however_spelled() {
        for path in [
            "/",
            "/run",
            "/var/run",
            "/var/run/",
            "/var/lib/../run",
            "/run/docker.sock",
        ] {
            let error = refuse_socket(Path::new(path)).expect_err(path).to_string();
            assert!(
                error.starts_with(&format!(
                    "kiln never gives a container the Docker socket (`{path}` is "
                )),
                "{error}"
            );
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let link = dir.path().join("up");
        std::os::unix::fs::symlink("/var/run", &link).expect("symlink");
        assert!(refuse_socket(&link).is_err());
        assert_eq!(
            refuse_socket(dir.path()).expect("a plain directory is fine"),
            std::fs::canonicalize(dir.path()).expect("canonical")
        );
    }
}
