//! [`Targets`]: one [`Platform`] over the `process` and `docker` targets.
//! A journal may hold both kinds of instance (a service moved from one
//! target to the other, or a resume by a `kiln` that never saw the
//! pipeline), so instances are started by what they run and stopped by
//! their handle.

use std::sync::Arc;
use std::time::Duration;

use super::{Instance, InstanceHandle, InstanceSpec, Platform, Strays};
use crate::error::Result;
use crate::plugin::BoxFuture;
use crate::spec::RunSpec;

/// Commands go to `process`, images to `containers`.
pub struct Targets {
    process: Arc<dyn Platform>,
    containers: Arc<dyn Platform>,
}

impl Targets {
    /// Both targets.
    pub fn new(process: Arc<dyn Platform>, containers: Arc<dyn Platform>) -> Self {
        Self {
            process,
            containers,
        }
    }

    fn by_handle(&self, handle: &InstanceHandle) -> &dyn Platform {
        match handle {
            InstanceHandle::Process { .. } => self.process.as_ref(),
            InstanceHandle::Container { .. } => self.containers.as_ref(),
        }
    }
}

impl Platform for Targets {
    fn start<'a>(&'a self, spec: &'a InstanceSpec) -> BoxFuture<'a, Result<Instance>> {
        match spec.service.run {
            RunSpec::Command(_) => self.process.start(spec),
            RunSpec::Image(_) => self.containers.start(spec),
        }
    }

    fn stop<'a>(
        &'a self,
        handle: &'a InstanceHandle,
        grace: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        self.by_handle(handle).stop(handle, grace)
    }

    fn alive<'a>(&'a self, handle: &'a InstanceHandle) -> BoxFuture<'a, bool> {
        self.by_handle(handle).alive(handle)
    }

    fn stop_strays<'a>(&'a self, strays: &'a Strays<'a>) -> BoxFuture<'a, Result<usize>> {
        Box::pin(async move {
            let processes = self.process.stop_strays(strays).await?;
            let containers = self.containers.stop_strays(strays).await?;
            Ok(processes + containers)
        })
    }
}
