//! kiln's isolation defaults as Docker settings: one function per kind of
//! container, so every container kiln creates is hardened the same way.

use std::collections::HashMap;
use std::path::Path;

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
        let path = mounts.workspace.join(&volume.host);
        refuse_socket(&path)?;
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

/// Refuses a bind of the engine's socket, however it is spelled (a
/// symlink, `/run` vs `/var/run`): the canonical path is compared, and any
/// Unix socket named like Docker's is refused too.
fn refuse_socket(path: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let engine = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(std::path::PathBuf::from))
        .unwrap_or_else(|| "/var/run/docker.sock".into());
    let engine = std::fs::canonicalize(&engine).unwrap_or(engine);
    let is_socket = std::fs::metadata(&canonical).is_ok_and(|m| m.file_type().is_socket());
    let named = canonical
        .file_name()
        .is_some_and(|n| n.to_string_lossy().contains("docker.sock"));
    if canonical == engine || (is_socket && named) {
        return Err(DockerError::Refused(format!(
            "kiln never gives a container the Docker socket (`{}` is `{}`)",
            path.display(),
            canonical.display()
        )));
    }
    Ok(())
}
