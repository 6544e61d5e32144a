//! End-to-end tests: each drives the real `kiln` binary.
mod validate;

mod diagnostics;
mod plan;
mod support;
