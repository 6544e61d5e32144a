//! Paths of the guest components kiln's tests run (built by `build.rs`).
#![warn(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
