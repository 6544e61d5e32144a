//! kiln's engine: runs a [`kiln_pipeline::Plan`].
//!
//! Owns the scheduler (ready queue by remaining-dependency count, bounded
//! concurrency), job and step state machines, retries, timeouts,
//! cancellation, secret masking and the [`Event`] stream. Executors plug in
//! through a trait; this crate never imports wasmtime or bollard, and never
//! prints.
#![warn(missing_docs)]

pub mod event;

pub use event::{Event, JobResult, RunId, RunResult, StepResult, Stream};
