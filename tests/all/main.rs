//! End-to-end tests: each drives the real `kiln` binary.
mod validate;

mod diagnostics;
mod plan;
mod run;
mod runs;
mod secrets;
mod signals;
mod support;
