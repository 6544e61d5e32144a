//! End-to-end tests: each drives the real `kiln` binary.
mod validate;

mod conditions;
mod diagnostics;
mod plan;
mod plugins;
mod retries;
mod run;
mod runs;
mod scheduling;
mod secrets;
mod signals;
mod support;
mod timeouts;
