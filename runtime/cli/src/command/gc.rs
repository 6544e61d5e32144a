//! `kiln gc`: remove the Docker containers, networks and volumes that runs
//! of this project left behind when kiln died (SIGKILL, power loss).

use std::path::Path;

use kiln_store::Store;

use crate::containers;
use crate::error::CliError;
use crate::locate;

/// Runs `kiln gc`.
pub(crate) fn run(state_dir: Option<&Path>) -> Result<u8, CliError> {
    // Scratch directories of killed kiln processes hold step scripts,
    // which may contain secrets; they are not tied to a project.
    let scratch = kiln_docker::sweep_scratch();
    if scratch > 0 {
        tracing::info!(
            scratch,
            "removed scratch directories of killed kiln processes"
        );
    }
    let located = match state_dir {
        Some(_) => None,
        None => locate::pipeline(None).ok(),
    };
    let dir = locate::state_dir(state_dir, located.as_ref());
    if !dir.join(kiln_store::DATABASE_FILE).is_file() {
        println!("nothing to remove: no runs recorded in `{}`", dir.display());
        return Ok(0);
    }
    // Opening the store marks runs whose process died as `interrupted`.
    let store = Store::open(&dir)?;
    let state = containers::state_label(&store);
    let finished = containers::finished_runs(&store)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Engine(format!("cannot start the async runtime: {e}")))?;
    let engine = containers::engine();
    let swept = runtime
        .block_on(kiln_docker::sweep(&engine, &state, None, finished))
        .map_err(|e| CliError::Engine(e.to_string()))?;
    if swept.is_empty() {
        println!("nothing to remove: no containers, networks or volumes of finished runs");
    } else {
        println!("{}", containers::describe(&swept));
    }
    Ok(0)
}
