//! kiln's benchmarks as a library behind the `kiln-bench` binary, so the
//! workload generator can be reused (by tests, or by other benchmarks).
//!
//! - [`dag`] generates the random job graph and renders it as a kiln
//!   pipeline or as an equivalent Makefile.
//! - [`plan`] times `kiln_pipeline::load` on such a pipeline.
//! - [`scheduler`] runs the same graph under `kiln run` and `make -j`.
//! - [`docker`] times a container job under `kiln run` against `docker run`.
//! - [`stats`] and [`cpu`] turn runs into figures.
//!
//! Plain `std::time` instead of criterion keeps the build small; see
//! docs/decisions.md.
#![warn(missing_docs)]

pub mod cpu;
pub mod dag;
pub mod docker;
pub mod error;
pub mod plan;
pub mod scheduler;
pub mod stats;

pub use error::Error;
