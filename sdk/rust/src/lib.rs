//! Write kiln plugins in Rust: step actions, health checks and deployment
//! strategies, compiled to WASI components with plain
//! `cargo build --target wasm32-wasip2`.
//!
//! A plugin is a type implementing one of [`Action`], [`HealthCheck`] or
//! [`Strategy`] plus one macro call ([`action!`], [`health_check!`],
//! [`deploy_strategy!`]) that exports it as the matching world of
//! `kiln:plugin@0.1.0` (the WIT in the repository's `wit/v0.1.0/`).
//!
//! The SDK's own types mirror the WIT ones, so plugin logic compiles and is
//! unit-tested natively: the bindings exist only in wasm builds, and
//! [`testing`] stands in for the host. Talk to the host through [`host`];
//! use `std::fs` (the workspace is the only preopened directory) and
//! `std::net` (only the granted addresses connect) for the rest.
//!
//! The macros generate the bindings inside the plugin crate and refer to
//! this crate as `::kiln_sdk`: depend on it under that name.
#![deny(missing_docs)]

mod action;
mod health;
pub mod host;
mod inputs;
mod metadata;
mod strategy;
pub mod testing;

pub use action::{Action, ActionError, Context, Outputs};
pub use health::{HealthCheck, HealthReport, HealthStatus, Metric, Target};
pub use inputs::{FromInput, InputError, Inputs};
pub use metadata::{Capability, FsAccess, InputSpec, Metadata, OutputSpec};
pub use strategy::{
    Approval, ApprovalAnswer, Decision, NextStep, RolloutState, Strategy, TrafficStats,
    VersionReplicas,
};

/// What the macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    #[cfg(target_family = "wasm")]
    pub use wit_bindgen;

    /// `(key, value)` pairs from generated key-value records.
    pub fn pairs<I: IntoIterator<Item = (String, String)>>(i: I) -> Vec<(String, String)> {
        i.into_iter().collect()
    }
}

// `__kiln_generate!("world")`: the world's bindings from the inline WIT.
include!(concat!(env!("OUT_DIR"), "/generate.rs"));

/// Exports `$ty` (an [`Action`]) as the component's `action` world.
///
/// The expansion exists only when building for wasm; natively the crate
/// compiles without it, so `cargo test` exercises the logic alone.
#[macro_export]
macro_rules! action {
    ($ty:ty) => {
        #[cfg(target_family = "wasm")]
        #[doc(hidden)]
        mod __kiln_wit {
            $crate::__kiln_generate!("action");
        }

        #[cfg(target_family = "wasm")]
        const _: () = {
            use __kiln_wit::kiln::plugin::{
                action_types as a, artifacts as art, host as h, types as t,
            };
            $crate::__kiln_glue_metadata!(t);
            $crate::__kiln_glue_host!(t, h, {
                fn artifact_put(
                    &self,
                    name: &str,
                    path: &str,
                ) -> Result<String, $crate::host::ArtifactError> {
                    art::put(name, path).map_err(artifact_error)
                }
                fn artifact_get(
                    &self,
                    name: &str,
                    path: &str,
                ) -> Result<String, $crate::host::ArtifactError> {
                    art::get(name, path).map_err(artifact_error)
                }
            });

            fn artifact_error(e: art::ArtifactError) -> $crate::host::ArtifactError {
                use $crate::host::ArtifactError as E;
                match e {
                    art::ArtifactError::NotFound(m) => E::NotFound(m),
                    art::ArtifactError::InvalidName(m) => E::InvalidName(m),
                    art::ArtifactError::Denied(m) => E::Denied(m),
                    art::ArtifactError::Store(m) => E::Store(m),
                }
            }

            struct Glue;

            impl __kiln_wit::Guest for Glue {
                fn metadata() -> t::Metadata {
                    metadata(<$ty as $crate::Action>::metadata())
                }

                fn run(c: a::Context) -> Result<Vec<t::KeyValue>, a::ActionError> {
                    install_host();
                    let ctx = $crate::Context {
                        inputs: $crate::Inputs::new(
                            $crate::__private::pairs(
                                c.inputs.into_iter().map(|kv| (kv.key, kv.value)),
                            ),
                            <$ty as $crate::Action>::metadata().inputs,
                        ),
                        workspace: c.workspace.map(Into::into),
                        job: c.job,
                        step: c.step,
                        run_id: c.run_id,
                    };
                    match <$ty as $crate::Action>::run(&ctx) {
                        Ok(out) => Ok(out
                            .into_pairs()
                            .into_iter()
                            .map(|(key, value)| t::KeyValue { key, value })
                            .collect()),
                        Err($crate::ActionError::InvalidInput(m)) => {
                            Err(a::ActionError::InvalidInput(m))
                        }
                        Err($crate::ActionError::Failed(m)) => Err(a::ActionError::Failed(m)),
                    }
                }
            }

    __kiln_wit::export!(Glue with_types_in __kiln_wit);
        };
    };
}

/// Exports `$ty` (a [`HealthCheck`]) as the component's `health-check` world.
#[macro_export]
macro_rules! health_check {
    ($ty:ty) => {
        #[cfg(target_family = "wasm")]
        #[doc(hidden)]
        mod __kiln_wit {
            $crate::__kiln_generate!("health-check");
        }

        #[cfg(target_family = "wasm")]
        const _: () = {
            use __kiln_wit::kiln::plugin::{health_types as ht, host as h, types as t};
            $crate::__kiln_glue_metadata!(t);
            $crate::__kiln_glue_host!(t, h, {});

            struct Glue;

            impl __kiln_wit::Guest for Glue {
                fn metadata() -> t::Metadata {
                    metadata(<$ty as $crate::HealthCheck>::metadata())
                }

                fn check(target: ht::Target, params: Vec<t::KeyValue>) -> ht::HealthReport {
                    install_host();
                    let target = $crate::Target {
                        host: target.host,
                        port: target.port,
                        version: target.version,
                        instance: target.instance,
                    };
                    let params = $crate::Inputs::new(
                        $crate::__private::pairs(params.into_iter().map(|kv| (kv.key, kv.value))),
                        <$ty as $crate::HealthCheck>::metadata().inputs,
                    );
                    let r = <$ty as $crate::HealthCheck>::check(&target, &params);
                    ht::HealthReport {
                        status: match r.status {
                            $crate::HealthStatus::Healthy => ht::HealthStatus::Healthy,
                            $crate::HealthStatus::Unhealthy => ht::HealthStatus::Unhealthy,
                            $crate::HealthStatus::Unknown => ht::HealthStatus::Unknown,
                        },
                        detail: r.detail,
                        metrics: r
                            .metrics
                            .into_iter()
                            .map(|m| ht::Metric {
                                name: m.name,
                                value: m.value,
                            })
                            .collect(),
                    }
                }
            }

    __kiln_wit::export!(Glue with_types_in __kiln_wit);
        };
    };
}

/// Exports `$ty` (a [`Strategy`]) as the component's `deploy-strategy`
/// world. That world imports nothing: [`host`] calls are no-ops in it.
#[macro_export]
macro_rules! deploy_strategy {
    ($ty:ty) => {
        #[cfg(target_family = "wasm")]
        #[doc(hidden)]
        mod __kiln_wit {
            $crate::__kiln_generate!("deploy-strategy");
        }

        #[cfg(target_family = "wasm")]
        const _: () = {
            use __kiln_wit::kiln::plugin::{health_types as ht, strategy_types as s, types as t};
            $crate::__kiln_glue_metadata!(t);

            struct Glue;

            impl __kiln_wit::Guest for Glue {
                fn metadata() -> t::Metadata {
                    metadata(<$ty as $crate::Strategy>::metadata())
                }

                fn next(st: s::RolloutState) -> Result<s::NextStep, String> {
                    let state = $crate::RolloutState {
                        service: st.service,
                        stable: st.stable,
                        candidate: st.candidate,
                        replicas: st.replicas,
                        versions: st
                            .versions
                            .into_iter()
                            .map(|v| $crate::VersionReplicas {
                                version: v.version,
                                replicas: v.replicas,
                                healthy: v.healthy,
                            })
                            .collect(),
                        candidate_weight: st.candidate_weight,
                        health: st
                            .health
                            .into_iter()
                            .map(|r| $crate::HealthReport {
                                status: match r.status {
                                    ht::HealthStatus::Healthy => $crate::HealthStatus::Healthy,
                                    ht::HealthStatus::Unhealthy => $crate::HealthStatus::Unhealthy,
                                    ht::HealthStatus::Unknown => $crate::HealthStatus::Unknown,
                                },
                                detail: r.detail,
                                metrics: r
                                    .metrics
                                    .into_iter()
                                    .map(|m| $crate::Metric {
                                        name: m.name,
                                        value: m.value,
                                    })
                                    .collect(),
                            })
                            .collect(),
                        traffic: st
                            .traffic
                            .into_iter()
                            .map(|x| $crate::TrafficStats {
                                version: x.version,
                                requests: x.requests,
                                errors: x.errors,
                                p50_latency_ms: x.p50_latency_ms,
                                p99_latency_ms: x.p99_latency_ms,
                            })
                            .collect(),
                        approvals: st
                            .approvals
                            .into_iter()
                            .map(|a| $crate::Approval {
                                name: a.name,
                                answer: match a.answer {
                                    s::ApprovalAnswer::Pending => $crate::ApprovalAnswer::Pending,
                                    s::ApprovalAnswer::Approved => $crate::ApprovalAnswer::Approved,
                                    s::ApprovalAnswer::Rejected => $crate::ApprovalAnswer::Rejected,
                                },
                            })
                            .collect(),
                        elapsed_ms: st.elapsed_ms,
                        params: $crate::Inputs::new(
                            $crate::__private::pairs(
                                st.params.into_iter().map(|kv| (kv.key, kv.value)),
                            ),
                            <$ty as $crate::Strategy>::metadata().inputs,
                        ),
                        memo: st.memo,
                    };
                    let step = <$ty as $crate::Strategy>::next(&state)?;
                    let decision = match step.decision {
                        $crate::Decision::Scale { version, replicas } => {
                            s::Decision::Scale(s::ScaleTo { version, replicas })
                        }
                        $crate::Decision::SetWeight(w) => s::Decision::SetWeight(w),
                        $crate::Decision::CheckHealth => s::Decision::CheckHealth,
                        $crate::Decision::Wait(ms) => s::Decision::Wait(ms),
                        $crate::Decision::AwaitApproval(g) => s::Decision::AwaitApproval(g),
                        $crate::Decision::Promote => s::Decision::Promote,
                        $crate::Decision::Rollback(r) => s::Decision::Rollback(r),
                        $crate::Decision::Done => s::Decision::Done,
                    };
                    Ok(s::NextStep {
                        decision,
                        memo: step.memo,
                    })
                }
            }

    __kiln_wit::export!(Glue with_types_in __kiln_wit);
        };
    };
}

/// `fn metadata(sdk) -> generated` for the `types` module `$t`.
#[doc(hidden)]
#[macro_export]
macro_rules! __kiln_glue_metadata {
    ($t:ident) => {
        fn metadata(m: $crate::Metadata) -> $t::Metadata {
            $t::Metadata {
                name: m.name,
                version: m.version,
                description: m.description,
                inputs: m
                    .inputs
                    .into_iter()
                    .map(|i| $t::InputSpec {
                        name: i.name,
                        description: i.description,
                        required: i.required,
                        default: i.default,
                    })
                    .collect(),
                outputs: m
                    .outputs
                    .into_iter()
                    .map(|o| $t::OutputSpec {
                        name: o.name,
                        description: o.description,
                    })
                    .collect(),
                capabilities: m
                    .capabilities
                    .into_iter()
                    .map(|c| match c {
                        $crate::Capability::Fs($crate::FsAccess::Read) => {
                            $t::Capability::Fs($t::FsAccess::Read)
                        }
                        $crate::Capability::Fs($crate::FsAccess::Write) => {
                            $t::Capability::Fs($t::FsAccess::Write)
                        }
                        $crate::Capability::Network(d) => $t::Capability::Network(d),
                        $crate::Capability::Env(n) => $t::Capability::Env(n),
                        $crate::Capability::Secret(n) => $t::Capability::Secret(n),
                    })
                    .collect(),
            }
        }
    };
}

/// `fn install_host()`: routes [`host`] calls to the `host` imports `$h`.
#[doc(hidden)]
#[macro_export]
macro_rules! __kiln_glue_host {
    ($t:ident, $h:ident, { $($extra:tt)* }) => {
        struct HostGlue;

        impl $crate::host::Backend for HostGlue {
            fn log(&self, level: $crate::host::LogLevel, message: &str) {
                use $crate::host::LogLevel as L;
                let level = match level {
                    L::Trace => $t::LogLevel::Trace,
                    L::Debug => $t::LogLevel::Debug,
                    L::Info => $t::LogLevel::Info,
                    L::Warn => $t::LogLevel::Warn,
                    L::Error => $t::LogLevel::Error,
                };
                $h::log(level, message)
            }

            fn progress(&self, percent: u8, message: &str) {
                $h::progress(percent, message)
            }

            fn secret(&self, name: &str) -> Option<String> {
                $h::secret(name)
            }

            $($extra)*
        }

        fn install_host() {
            $crate::host::install(Some(::std::rc::Rc::new(HostGlue)));
        }
    };
}
