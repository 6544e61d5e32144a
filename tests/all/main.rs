//! End-to-end tests: each drives the real `kiln` binary.
mod validate;

mod artifacts;
mod caches_and_gc;
mod conditions;
mod containers;
mod deploy;
mod deploy_docker;
mod deploy_support;
mod diagnostics;
mod examples;
mod hostile;
mod plan;
mod plugin_authoring;
mod plugins;
mod registry;
mod retries;
mod run;
mod runs;
mod sandbox;
mod scheduling;
mod sdk;
mod secrets;
mod signals;
mod support;
mod terminal;
mod timeouts;
