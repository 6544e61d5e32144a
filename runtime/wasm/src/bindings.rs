//! Every `bindgen!` of the host, one module per released WIT version.
//!
//! A released version is frozen (see docs/plugins.md): when `wit/v0.2.0`
//! arrives it gets a `v0_2` module here, and `v0_1` types are converted into
//! the newest ones with `From` impls, so the rest of the host only ever sees
//! one set of types.

/// `kiln:plugin@0.1.0` (`wit/v0.1.0`). Generated code: documented by the WIT.
#[allow(missing_docs)]
pub mod v0_1 {
    /// The `action` world: `uses:` steps.
    pub mod action {
        wasmtime::component::bindgen!({
            path: "../../wit/v0.1.0",
            world: "action",
            // Host imports are plain functions; exports are called
            // asynchronously so epoch ticks can yield to the runtime.
            exports: { default: async },
        });
    }

    /// The `health-check` world (driven by the deploy controller).
    pub mod health {
        wasmtime::component::bindgen!({
            path: "../../wit/v0.1.0",
            world: "health-check",
            exports: { default: async },
            with: {
                "kiln:plugin/types": super::action::kiln::plugin::types,
                "kiln:plugin/host": super::action::kiln::plugin::host,
            },
        });
    }

    /// The `deploy-strategy` world (pure decisions).
    pub mod strategy {
        wasmtime::component::bindgen!({
            path: "../../wit/v0.1.0",
            world: "deploy-strategy",
            exports: { default: async },
            with: {
                "kiln:plugin/types": super::action::kiln::plugin::types,
                "kiln:plugin/health-types": super::health::kiln::plugin::health_types,
            },
        });
    }

    pub use action::kiln::plugin::types;
}
