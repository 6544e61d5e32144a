//! The engine's [`ArtifactStore`] over kiln-store's content-addressed
//! store: each operation opens its own connection and runs on a blocking
//! thread, so parallel jobs transfer in parallel and the engine's single
//! async thread never waits on a disk.

use std::error::Error as _;
use std::path::{Path, PathBuf};

use kiln_engine::ArtifactStore;
use kiln_engine::artifacts::{
    CacheOutcome, CacheRequest, DownloadRequest, Transfer, TransferAction, UploadRequest,
};
use kiln_engine::executor::BoxFuture;
use kiln_pipeline::ArtifactSpec;
use kiln_store::artifacts::{Artifacts, Error};

/// The store of one state directory (`.kiln/`).
#[derive(Debug, Clone)]
pub(crate) struct StoreAdapter {
    root: PathBuf,
}

impl StoreAdapter {
    pub(crate) fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The state directory relative to `workspace`, if it is inside it
    /// (`.kiln`): never uploaded, or an upload would pack the store into
    /// itself.
    fn state_in(&self, workspace: &Path) -> Option<String> {
        let root = std::fs::canonicalize(&self.root).ok()?;
        let workspace = std::fs::canonicalize(workspace).ok()?;
        let rel = root.strip_prefix(workspace).ok()?;
        Some(rel.to_string_lossy().into_owned())
    }
}

/// An error and its causes on one line: `cannot …: disk full …: No space left on device`.
pub(crate) fn describe(err: &Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        let more = inner.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = inner.source();
    }
    text
}

async fn blocking<T: Send + 'static>(
    root: &Path,
    work: impl FnOnce(&mut Artifacts) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let root = root.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut store = Artifacts::open(&root).map_err(|e| {
            format!(
                "cannot open the artifact store in `{}`: {}",
                root.display(),
                describe(&e)
            )
        })?;
        work(&mut store)
    })
    .await
    .unwrap_or_else(|e| Err(format!("internal error in kiln: {e}")))
}

fn sha(digest: &kiln_store::cas::Digest) -> Option<String> {
    Some(format!("sha256:{digest}"))
}

impl ArtifactStore for StoreAdapter {
    fn download(&self, request: DownloadRequest) -> BoxFuture<'_, Result<Vec<Transfer>, String>> {
        Box::pin(blocking(&self.root, move |store| download(store, request)))
    }

    fn upload(&self, request: UploadRequest) -> BoxFuture<'_, Result<Vec<Transfer>, String>> {
        let state = self.state_in(&request.workspace);
        Box::pin(blocking(&self.root, move |store| {
            request
                .artifacts
                .iter()
                .map(|spec| upload(store, &request, spec, state.as_deref()))
                .collect()
        }))
    }

    fn restore_cache(&self, request: CacheRequest) -> BoxFuture<'_, Result<CacheOutcome, String>> {
        Box::pin(blocking(&self.root, move |store| restore(store, request)))
    }

    fn save_cache(&self, request: CacheRequest) -> BoxFuture<'_, Result<Transfer, String>> {
        if let Some(state) = self.state_in(&request.workspace)
            && let Some(path) = request.paths.iter().find(|p| holds(p, &state))
        {
            let message = format!(
                "cannot save cache `{}`: `{path}` holds kiln's state directory `{state}`; cache the directories below it",
                request.key
            );
            return Box::pin(async move { Err(message) });
        }
        Box::pin(blocking(&self.root, move |store| save(store, request)))
    }
}

fn download(store: &mut Artifacts, request: DownloadRequest) -> Result<Vec<Transfer>, String> {
    let fail = |e: Error| format!("cannot download artifacts: {}", describe(&e));
    let available = store.of_jobs(request.run, &request.from).map_err(fail)?;
    let selected = match &request.names {
        None => available,
        Some(names) => {
            let mut selected = Vec::new();
            for name in names {
                let found: Vec<_> = available
                    .iter()
                    .filter(|a| &a.name == name)
                    .cloned()
                    .collect();
                if found.is_empty() {
                    return Err(format!(
                        "cannot download artifact `{name}`: none of the needed jobs ({}) uploaded it",
                        request
                            .from
                            .iter()
                            .map(|j| format!("`{j}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                selected.extend(found);
            }
            selected
        }
    };
    let mut transfers = Vec::new();
    for artifact in selected {
        store
            .download(&artifact, Some(request.run), &request.workspace)
            .map_err(|e| {
                format!(
                    "cannot download artifact `{}` (from `{}`): {}",
                    artifact.name,
                    artifact.job,
                    describe(&e)
                )
            })?;
        transfers.push(Transfer {
            action: TransferAction::Download,
            name: artifact.name.clone(),
            digest: sha(&artifact.digest),
            bytes: artifact.size,
            detail: Some(format!("from `{}`", artifact.job)),
        });
    }
    Ok(transfers)
}

/// One literal path is stored as that file or directory; globs or several
/// paths as the matched files.
fn upload(
    store: &mut Artifacts,
    request: &UploadRequest,
    spec: &ArtifactSpec,
    state: Option<&str>,
) -> Result<Transfer, String> {
    let fail = |message: String| format!("cannot upload artifact `{}`: {message}", spec.name);
    let literal = match spec.paths.as_slice() {
        [one] if !one.contains(['*', '?']) && !one.starts_with('!') => Some(one.as_str()),
        _ => None,
    };
    let stored = match literal {
        Some(path) => {
            if std::fs::symlink_metadata(request.workspace.join(path)).is_err() {
                return Err(fail(format!("`{path}` does not exist in the workspace")));
            }
            if let Some(state) = state
                && holds(path, state)
            {
                return Err(fail(format!(
                    "`{path}` holds kiln's state directory `{state}`; name the directories to upload, or use a glob (it skips `{state}`)"
                )));
            }
            store.put(
                request.run,
                &request.job,
                &spec.name,
                &request.workspace,
                path,
            )
        }
        None => {
            let mut files = kiln_pipeline::expr::match_files(&request.workspace, &spec.paths)
                .map_err(|e| fail(e.replace("`hashFiles` ", "")))?;
            if let Some(state) = state {
                files.retain(|f| !under(f, state));
            }
            if files.is_empty() {
                return Err(fail(format!(
                    "no file matches {}",
                    spec.paths
                        .iter()
                        .map(|p| format!("`{p}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            store.put_files(
                request.run,
                &request.job,
                &spec.name,
                &request.workspace,
                &files,
            )
        }
    };
    let artifact = stored.map_err(|e| fail(describe(&e)))?;
    Ok(Transfer {
        action: TransferAction::Upload,
        name: artifact.name,
        digest: sha(&artifact.digest),
        bytes: artifact.size,
        detail: None,
    })
}

fn restore(store: &mut Artifacts, request: CacheRequest) -> Result<CacheOutcome, String> {
    let hit = store
        .restore_cache(
            request.run,
            &request.key,
            &request.restore_keys,
            &request.workspace,
        )
        .map_err(|e| format!("cannot restore cache `{}`: {}", request.key, describe(&e)))?;
    Ok(match hit {
        Some(hit) => CacheOutcome {
            exact_hit: hit.exact,
            transfer: Transfer {
                action: TransferAction::CacheRestore,
                detail: Some(match &hit.prefix {
                    None => "exact key".to_owned(),
                    Some(prefix) => format!("restore-keys prefix `{prefix}`"),
                }),
                name: hit.key,
                digest: None,
                bytes: hit.bytes,
            },
        },
        None => CacheOutcome {
            exact_hit: false,
            transfer: Transfer {
                action: TransferAction::CacheMiss,
                name: request.key,
                digest: None,
                bytes: 0,
                detail: Some("no entry matches the key or its restore-keys".to_owned()),
            },
        },
    })
}

fn save(store: &mut Artifacts, request: CacheRequest) -> Result<Transfer, String> {
    let fail = |e: Error| format!("cannot save cache `{}`: {}", request.key, describe(&e));
    let skip = |detail: String| Transfer {
        action: TransferAction::CacheSkip,
        name: request.key.clone(),
        digest: None,
        bytes: 0,
        detail: Some(detail),
    };
    if store.cache_entry(&request.key).map_err(fail)?.is_some() {
        return Ok(skip("another job saved this key first".to_owned()));
    }
    let saved = store
        .save_cache(
            request.run,
            &request.pipeline,
            &request.key,
            &request.paths,
            &request.workspace,
        )
        .map_err(fail)?;
    Ok(match saved {
        Some(saved) => Transfer {
            action: TransferAction::CacheSave,
            name: request.key.clone(),
            digest: None,
            bytes: saved.size,
            detail: (!saved.missing.is_empty()).then(|| {
                format!(
                    "skipped missing {}",
                    saved
                        .missing
                        .iter()
                        .map(|p| format!("`{p}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
        },
        None => skip("none of its paths exist".to_owned()),
    })
}

/// Whether the workspace-relative `path` is `state` or a directory above it.
fn holds(path: &str, state: &str) -> bool {
    let path = path.trim_start_matches("./").trim_end_matches('/');
    path.is_empty() || path == "." || under(state, path)
}

/// Whether `path` is `dir` or below it (both `/`-separated, relative).
fn under(path: &str, dir: &str) -> bool {
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}
