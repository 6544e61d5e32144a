//! kiln's container executor: `image:` jobs and steps, `services:`
//! sidecars, image checks and the clean-up of what kiln created, on the
//! Docker engine through bollard.
//!
//! Owns every Docker call kiln makes and the isolation defaults
//! ([`spec`]): containers are never privileged, never see the Docker
//! socket, run with `no-new-privileges`, Docker's default seccomp profile
//! and capability set, an init process, and memory/CPU/process limits.
//! Every container and network carries labels ([`labels`]) so that a run
//! that died leaves nothing [`sweep`] cannot find. [`DockerPlatform`] is
//! the `docker` deployment target, kiln-deploy's platform over the same
//! defaults. Never prints; errors are [`DockerError`].
#![warn(missing_docs)]

mod deploy;
mod engine;
mod error;
mod executor;
mod gc;
mod image;
pub mod labels;
mod scratch;
mod services;
pub mod spec;
mod step;

pub use deploy::DockerPlatform;
pub use engine::Engine;
pub use error::{DockerError, Result};
pub use executor::DockerExecutor;
pub use gc::{Swept, sweep};
pub use image::exists as image_exists;
pub use labels::Owner;
pub use scratch::sweep_scratch;
