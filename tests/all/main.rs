//! End-to-end tests: each drives the real `kiln` binary.
mod validate;
