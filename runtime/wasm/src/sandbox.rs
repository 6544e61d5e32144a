//! What a plugin may touch: the workspace preopen, the network allow-list
//! and the environment, turned into a `WasiCtx`. Enforcement is
//! wasmtime-wasi's (cap-std preopens, the socket address check); this module
//! only decides what to hand it.

use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;

use kiln_pipeline::{FsAccess, Permissions};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use crate::output::Pipe;

/// Where the workspace appears inside the guest.
pub const WORKSPACE_GUEST_PATH: &str = "/workspace";

/// The granted network endpoints, resolved to socket addresses once, when
/// the step starts. Connections are checked against the resolved addresses,
/// so a name lookup inside the guest can never widen the grant.
#[derive(Debug, Clone, Default)]
pub(crate) struct NetworkGrant {
    allowed: HashSet<SocketAddr>,
    /// A granted entry is a host name, so the guest needs name lookups.
    needs_lookup: bool,
}

impl NetworkGrant {
    /// Resolves `host:port` entries; an entry that does not resolve grants
    /// nothing (and is reported by the caller).
    pub(crate) fn resolve(entries: &[String]) -> Result<Self, String> {
        let mut grant = Self::default();
        for entry in entries {
            let is_literal = entry.parse::<SocketAddr>().is_ok();
            grant.needs_lookup |= !is_literal;
            let addrs = entry
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve `{entry}`: {e}"))?;
            grant.allowed.extend(addrs);
        }
        Ok(grant)
    }

    /// Hands the grant to wasmtime-wasi: TCP only when something is
    /// granted, never UDP, name lookups only for granted names, and every
    /// address checked against the resolved set.
    pub(crate) fn apply(self, builder: &mut WasiCtxBuilder) {
        let network = Arc::new(self);
        builder.allow_tcp(!network.allowed.is_empty());
        builder.allow_udp(false);
        builder.allow_ip_name_lookup(network.needs_lookup);
        builder.socket_addr_check(move |addr, use_| {
            let network = network.clone();
            Box::pin(async move { network.allows(addr, use_) })
        });
    }

    fn allows(&self, addr: SocketAddr, use_: SocketAddrUse) -> bool {
        match use_ {
            // Binding happens implicitly before a connect; it is harmless
            // on its own (no listener is reachable without a grant to it).
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => addr.ip().is_unspecified(),
            SocketAddrUse::TcpConnect => self.allowed.contains(&addr),
            // No listening, ever: a step is a client.
            _ => false,
        }
    }
}

/// Everything the sandbox of one step is built from.
pub(crate) struct Sandbox<'a> {
    pub permissions: &'a Permissions,
    pub workspace: Option<&'a Path>,
    /// Granted variables with their values.
    pub env: &'a [(String, String)],
    pub network: NetworkGrant,
    pub stdout: Pipe,
    pub stderr: Pipe,
}

impl Sandbox<'_> {
    /// The WASI context: stdin empty, no args, only what was granted.
    pub(crate) fn build(self) -> Result<WasiCtx, String> {
        let mut builder = WasiCtxBuilder::new();
        builder.stdout(self.stdout).stderr(self.stderr);
        builder.envs(self.env);
        if let Some(workspace) = self.workspace {
            let perms = match self.permissions.fs {
                FsAccess::None => None,
                FsAccess::Read => Some(FsPerms::ReadOnly),
                FsAccess::Write => Some(FsPerms::ReadWrite),
            };
            if let Some(perms) = perms {
                builder
                    .preopened_dir(workspace, WORKSPACE_GUEST_PATH, perms)
                    .map_err(|e| {
                        format!("cannot open the workspace `{}`: {e:#}", workspace.display())
                    })?;
            }
        }
        self.network.apply(&mut builder);
        Ok(builder.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_allows_exactly_its_resolved_addresses_and_no_listening() {
        let grant =
            NetworkGrant::resolve(&["127.0.0.1:9000".into(), "localhost:8080".into()]).unwrap();
        assert!(grant.needs_lookup);
        let ok: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let by_name: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let other_port: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        let other_host: SocketAddr = "10.0.0.1:9000".parse().unwrap();
        let wildcard: SocketAddr = "0.0.0.0:0".parse().unwrap();
        assert!(grant.allows(ok, SocketAddrUse::TcpConnect));
        assert!(grant.allows(by_name, SocketAddrUse::TcpConnect));
        assert!(!grant.allows(other_port, SocketAddrUse::TcpConnect));
        assert!(!grant.allows(other_host, SocketAddrUse::TcpConnect));
        assert!(grant.allows(wildcard, SocketAddrUse::TcpBind));
        assert!(!grant.allows(ok, SocketAddrUse::TcpBind));
        assert!(!grant.allows(wildcard, SocketAddrUse::TcpListen));
    }

    #[test]
    fn literal_grants_need_no_name_lookup_and_bad_entries_are_named() {
        assert!(
            !NetworkGrant::resolve(&["127.0.0.1:1".into()])
                .unwrap()
                .needs_lookup
        );
        let err = NetworkGrant::resolve(&["no-port".into()]).unwrap_err();
        assert!(err.starts_with("cannot resolve `no-port`: "), "{err}");
    }
}
