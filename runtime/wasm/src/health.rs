//! Calling a `health-check` component: `check(target, params)`, with the
//! network granted to the target's address and nothing else (no files, no
//! env, no secrets), until a deadline. The deploy controller decides when
//! to check; this is one check. What the guest writes (`host.log`, stdout,
//! stderr) comes back with the verdict, bounded, for the rollout log.

use std::net::SocketAddr;
use std::time::Instant;

use crate::output::Captured;

use crate::error::WasmError;
use crate::runtime::{Plugin, Pre, Runtime, World};
use crate::sandbox::NetworkGrant;
use crate::state::HostState;
use crate::trap::{self, Interrupted};

pub use crate::bindings::v0_1::health::kiln::plugin::health_types::{
    HealthReport, HealthStatus, Metric, Target,
};
pub use crate::bindings::v0_1::types::KeyValue;

/// Bytes kept of each of a check's stdout and stderr (`host.log` lines
/// go to stderr): enough to say why, never a flood in the rollout log.
const CHECK_OUTPUT_LIMIT: usize = 8 * 1024;

/// One check's verdict and what the guest wrote meanwhile.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The verdict.
    pub report: HealthReport,
    /// `host.log` and `host.progress` lines, stdout and stderr, in the
    /// order written; each stream cut after 8 KiB with a marker.
    pub output: String,
}

impl Plugin {
    /// Checks `target` once, with `params` completed by the declared
    /// defaults. The guest may connect to `target.host:port`
    /// only. A check still running at `deadline` is interrupted and
    /// reported `unknown`, as is a trap: a broken check must not count as a
    /// verdict on the instance. `Err` is a component that is not a check or
    /// a target address that does not resolve.
    pub async fn check(
        &self,
        runtime: &Runtime,
        target: &Target,
        params: &[KeyValue],
        deadline: Instant,
    ) -> Result<Checked, WasmError> {
        let Pre::Health(pre) = &self.pre else {
            return Err(WasmError::WrongWorld {
                plugin: self.reference.clone(),
                expected: World::HealthCheck.name().to_owned(),
                found: self.world.name().to_owned(),
            });
        };
        let network = target_grant(&self.reference, target).await?;
        let mut output = Captured::new(CHECK_OUTPUT_LIMIT);
        let mut wasi = wasmtime_wasi::WasiCtxBuilder::new();
        network.apply(&mut wasi);
        wasi.stdout(output.stdout.clone())
            .stderr(output.stderr.clone());
        let state = HostState {
            wasi: wasi.build(),
            log: Some(output.stderr.clone()),
            ..runtime.bare_state()
        };
        let mut store = runtime.store(state, Some(deadline), None);
        let unknown = |e: wasmtime::Error| {
            let detail = if e.downcast_ref::<Interrupted>().is_some() {
                "the check did not finish in time".to_owned()
            } else {
                format!(
                    "the check `{}` failed: {}",
                    self.reference,
                    trap::explain(&e, runtime.limits.memory)
                )
            };
            HealthReport {
                status: HealthStatus::Unknown,
                detail,
                metrics: Vec::new(),
            }
        };
        let call = async {
            let instance = pre.instantiate_async(&mut store).await?;
            let params = self.metadata.with_default_params(params);
            instance.call_check(&mut store, target, &params).await
        };
        // The epoch deadline stops a guest that computes; one waiting in a
        // host call (a socket read) is stopped by dropping the call.
        let until = tokio::time::Instant::from_std(deadline);
        let report = match tokio::time::timeout_at(until, call).await {
            Ok(result) => result.unwrap_or_else(unknown),
            Err(_) => unknown(wasmtime::Error::new(Interrupted)),
        };
        Ok(Checked {
            report,
            output: output.take(),
        })
    }
}

/// The grant of one check: the target's address. A name (a container's
/// host) is resolved here, off the async runtime's threads.
async fn target_grant(reference: &str, target: &Target) -> Result<NetworkGrant, WasmError> {
    let entry = match target.host.parse::<std::net::IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, target.port).to_string(),
        Err(_) => format!("{}:{}", target.host, target.port),
    };
    let unresolved = |message: String| WasmError::Target {
        plugin: reference.to_owned(),
        message,
    };
    if entry.parse::<SocketAddr>().is_ok() {
        return NetworkGrant::resolve(&[entry]).map_err(unresolved);
    }
    tokio::task::spawn_blocking(move || NetworkGrant::resolve(&[entry]))
        .await
        .map_err(|e| unresolved(format!("cannot resolve the target: {e}")))?
        .map_err(unresolved)
}
