//! Removing what kiln created: one run's leftovers, or every leftover of a
//! state directory whose run is no longer live.

use std::collections::BTreeSet;

use bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, ListVolumesOptions, RemoveContainerOptions,
    RemoveVolumeOptions,
};

use crate::engine::{Engine, api, is_not_found};
use crate::error::Result;
use crate::labels;

/// What a sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Containers removed.
    pub containers: usize,
    /// Networks removed.
    pub networks: usize,
    /// Volumes removed.
    pub volumes: usize,
    /// Runs they belonged to.
    pub runs: BTreeSet<i64>,
}

impl Swept {
    /// Nothing was found.
    pub fn is_empty(&self) -> bool {
        self.containers + self.networks + self.volumes == 0
    }
}

/// Removes every container, network and volume labelled with `state` whose
/// run `is_leftover` says is over (or, with `run`, only that run's).
pub async fn sweep(
    engine: &Engine,
    state: &str,
    run: Option<i64>,
    is_leftover: impl Fn(i64) -> bool,
) -> Result<Swept> {
    let docker = engine.client().await?;
    let filters = labels::filter(state, run);
    let mut swept = Swept::default();
    let owned = |labels: Option<&std::collections::HashMap<String, String>>| -> Option<i64> {
        let run: i64 = labels?.get(labels::RUN)?.parse().ok()?;
        is_leftover(run).then_some(run)
    };
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .map_err(api("list kiln's containers"))?;
    for c in containers {
        let (Some(id), Some(run)) = (c.id.as_deref(), owned(c.labels.as_ref())) else {
            continue;
        };
        remove_container(engine, id).await?;
        swept.containers += 1;
        swept.runs.insert(run);
    }
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters.clone()),
        }))
        .await
        .map_err(api("list kiln's networks"))?;
    for n in networks {
        let (Some(id), Some(run)) = (n.id.as_deref(), owned(n.labels.as_ref())) else {
            continue;
        };
        match docker.remove_network(id).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api(format!("remove network `{id}`"))(e)),
        }
        swept.networks += 1;
        swept.runs.insert(run);
    }
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(api("list kiln's volumes"))?;
    for v in volumes.volumes.unwrap_or_default() {
        let Some(run) = owned(Some(&v.labels)) else {
            continue;
        };
        match docker
            .remove_volume(&v.name, Some(RemoveVolumeOptions { force: true }))
            .await
        {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api(format!("remove volume `{}`", v.name))(e)),
        }
        swept.volumes += 1;
        swept.runs.insert(run);
    }
    Ok(swept)
}

/// Kills and removes a container with its anonymous volumes; one already
/// gone is fine.
pub(crate) async fn remove_container(engine: &Engine, id: &str) -> Result<()> {
    let docker = engine.client().await?;
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        // "removal already in progress" (409): someone else is on it.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(()),
        Err(e) => Err(api(format!("remove container `{id}`"))(e)),
    }
}
