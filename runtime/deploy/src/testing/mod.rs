//! **Test stand-ins** for the first-party components, until the merge that
//! connects the WASM host: native Rust versions of `kiln/rolling`,
//! `kiln/blue-green`, `kiln/canary` and `kiln/http-health` behind the same
//! [`Strategy`]/[`HealthCheck`] traits, so the controller is tested against
//! real decision logic. The production versions are the components in
//! `plugins/`; this module is compiled only for tests (`cfg(test)`) and by
//! the `test-support` feature, which only the `kiln` package's
//! dev-dependency enables — a release `kiln` does not contain it.

mod health;
mod strategies;

use std::sync::Arc;

pub use health::HttpHealth;
pub use strategies::{BlueGreen, Canary, Rolling};

use crate::plugin::{HealthCheck, Strategy};

/// The stand-in for a first-party strategy reference (`kiln/canary@1`).
pub fn strategy(uses: &str) -> Option<Box<dyn Strategy>> {
    match uses.split('@').next()? {
        "kiln/rolling" => Some(Box::new(Rolling)),
        "kiln/blue-green" => Some(Box::new(BlueGreen)),
        "kiln/canary" => Some(Box::new(Canary)),
        _ => None,
    }
}

/// The stand-in for a first-party health-check reference.
pub fn health(uses: &str) -> Option<Arc<dyn HealthCheck>> {
    match uses.split('@').next()? {
        "kiln/http-health" => Some(Arc::new(HttpHealth)),
        _ => None,
    }
}
