//! End-to-end tests: each drives the real `kiln` binary.
mod validate;

mod conditions;
mod diagnostics;
mod plan;
mod plugin_authoring;
mod retries;
mod run;
mod runs;
mod scheduling;
mod sdk;
mod secrets;
mod signals;
mod support;
mod timeouts;
