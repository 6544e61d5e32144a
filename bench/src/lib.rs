//! kiln's benchmarks as a library behind the `kiln-bench` binary, so the
//! workload generator can be reused (by tests, or by other benchmarks).
//!
//! - [`dag`] generates the random job graph and renders it as a kiln
//!   pipeline or as an equivalent Makefile.
//! - [`plan`] times `kiln_pipeline::load` on such a pipeline.
//! - [`resolve`] times verified plugin-store reads and `--locked` resolution.
//! - [`proxy`] measures the deployment proxy and rollback latency.
//! - [`scheduler`] runs the same graph under `kiln run` and `make -j`.
//! - [`ingest`] stores a file in the blob store against `sha256sum`.
//! - [`docker`] times a container job under `kiln run` against `docker run`.
//! - [`wasm`] times plugin step start-up and concurrent plugin steps.
//! - [`stats`] and [`cpu`] turn runs into figures.
//!
//! Plain `std::time` instead of criterion keeps the build small; see
//! docs/decisions.md.
#![warn(missing_docs)]

pub mod cpu;
pub mod dag;
pub mod docker;
pub mod error;
pub mod ingest;
pub mod plan;
pub mod proxy;
pub mod resolve;
pub mod scheduler;
pub mod stats;
pub mod wasm;

pub use error::Error;
