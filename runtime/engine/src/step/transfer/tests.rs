//! When the engine calls the store, against a recording one: downloads
//! before the first step, uploads and cache saves only after success, an
//! exact cache hit is not saved again, and a store error fails the job with
//! its reason.

use std::sync::{Arc, Mutex};

use kiln_pipeline::{LoadOptions, SourceFile};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::artifacts::{
    ArtifactStore, CacheOutcome, CacheRequest, DownloadRequest, Transfer, TransferAction,
    UploadRequest,
};
use crate::event::{Event, JobResult};
use crate::executor::{BoxFuture, Executor, OutputSender, StepControl, StepExit, StepRequest};
use crate::{RunOptions, RunResult};

type Log = Arc<Mutex<Vec<String>>>;

/// Steps `ok` succeed, anything else exits 1.
struct Steps(Log);

impl Executor for Steps {
    fn run_step(
        &self,
        r: StepRequest,
        _: OutputSender,
        _: StepControl,
    ) -> BoxFuture<'static, StepExit> {
        self.0
            .lock()
            .unwrap()
            .push(format!("step {} {}", r.job, r.script.trim()));
        let code = if r.script.trim() == "ok" { 0 } else { 1 };
        Box::pin(async move { StepExit::Exited(code) })
    }
}

/// Records every call; the cache key `hit` is an exact hit, `broken`
/// fails the upload of an artifact of that name.
struct Store(Log);

fn transfer(action: TransferAction, name: &str) -> Transfer {
    Transfer {
        action,
        name: name.to_owned(),
        digest: None,
        bytes: 0,
        detail: None,
    }
}

impl ArtifactStore for Store {
    fn download(&self, r: DownloadRequest) -> BoxFuture<'_, Result<Vec<Transfer>, String>> {
        self.0.lock().unwrap().push(format!(
            "download {} from {:?} names {:?}",
            r.job, r.from, r.names
        ));
        Box::pin(async { Ok(Vec::new()) })
    }

    fn upload(&self, r: UploadRequest) -> BoxFuture<'_, Result<Vec<Transfer>, String>> {
        let names: Vec<String> = r.artifacts.iter().map(|a| a.name.clone()).collect();
        self.0
            .lock()
            .unwrap()
            .push(format!("upload {} {names:?}", r.job));
        Box::pin(async move {
            if names.iter().any(|n| n == "broken") {
                Err("cannot upload artifact `broken`: disk full".into())
            } else {
                Ok(names
                    .iter()
                    .map(|n| transfer(TransferAction::Upload, n))
                    .collect())
            }
        })
    }

    fn restore_cache(&self, r: CacheRequest) -> BoxFuture<'_, Result<CacheOutcome, String>> {
        self.0
            .lock()
            .unwrap()
            .push(format!("restore {} {} {:?}", r.job, r.key, r.restore_keys));
        let exact_hit = r.key == "hit";
        Box::pin(async move {
            Ok(CacheOutcome {
                exact_hit,
                transfer: transfer(TransferAction::CacheRestore, &r.key),
            })
        })
    }

    fn save_cache(&self, r: CacheRequest) -> BoxFuture<'_, Result<Transfer, String>> {
        self.0
            .lock()
            .unwrap()
            .push(format!("save {} {}", r.job, r.key));
        Box::pin(async move { Ok(transfer(TransferAction::CacheSave, &r.key)) })
    }
}

async fn run(yaml: &str) -> (RunResult, Vec<String>, Vec<Event>) {
    let log: Log = Arc::default();
    let plan = kiln_pipeline::load(&SourceFile::new("kiln.yml", yaml), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{:?}", e.diagnostics))
        .plan;
    let mut options = RunOptions::new(std::process::id() as i64 * 7 + 3, std::env::temp_dir());
    options.temp_root = Some(std::env::temp_dir());
    options.max_parallel = 1;
    options.artifacts = Some(Arc::new(Store(log.clone())));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let result = crate::run(
        Arc::new(plan),
        options,
        Arc::new(Steps(log.clone())),
        tx,
        CancellationToken::new(),
        CancellationToken::new(),
    )
    .await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    let log = log.lock().unwrap().clone();
    (result, log, events)
}

#[tokio::test]
async fn transfers_wrap_the_steps_in_order() {
    let (result, log, events) = run("jobs:
  build:
    cache: { key: 'k-${{ job.name }}', restore-keys: [k-], paths: [vendor] }
    artifacts: { app: out/app }
    steps: [{run: ok}]
  test:
    needs: [build]
    download: [app]
    cache: { key: hit, paths: [vendor] }
    steps: [{run: ok}, {download_artifact: out/}]
")
    .await;
    assert_eq!(result, RunResult::Success);
    assert_eq!(
        log,
        [
            "restore build k-build [\"k-\"]",
            "step build ok",
            "upload build [\"app\"]",
            "save build k-build",
            "download test from [\"build\"] names Some([\"app\"])",
            "restore test hit []",
            "step test ok",
            "download test from [\"build\"] names Some([\"out\"])",
        ]
    );
    let transfers = events
        .iter()
        .filter(|e| matches!(e, Event::Transfer { .. }))
        .count();
    assert_eq!(transfers, 4, "restore, upload, save, restore: {events:?}");
}

#[tokio::test]
async fn a_failed_job_uploads_nothing_and_a_store_error_fails_the_job() {
    let (result, log, events) = run("jobs:
  a:
    artifacts: { app: app }
    cache: { key: k, paths: [v] }
    steps: [{run: 'exit 1'}]
  b:
    artifacts: { broken: x }
    steps: [{run: ok}]
")
    .await;
    assert_eq!(result, RunResult::Failed);
    assert_eq!(
        log,
        [
            "restore a k []",
            "step a exit 1",
            "step b ok",
            "upload b [\"broken\"]"
        ]
    );
    let reason = events.iter().find_map(|e| match e {
        Event::JobFinished {
            name,
            result: JobResult::Failed,
            reason,
            ..
        } if name == "b" => reason.clone(),
        _ => None,
    });
    assert_eq!(
        reason.as_deref(),
        Some("cannot upload artifact `broken`: disk full")
    );
}

#[tokio::test]
async fn without_a_store_a_job_that_needs_one_fails_saying_so() {
    let plan = kiln_pipeline::load(
        &SourceFile::new(
            "kiln.yml",
            "jobs:\n  a:\n    artifacts: {x: x}\n    steps: [{run: ok}]\n",
        ),
        &LoadOptions::default(),
    )
    .unwrap()
    .plan;
    let mut options = RunOptions::new(std::process::id() as i64 * 7 + 5, std::env::temp_dir());
    options.temp_root = Some(std::env::temp_dir());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let log: Log = Arc::default();
    let result = crate::run(
        Arc::new(plan),
        options,
        Arc::new(Steps(log)),
        tx,
        CancellationToken::new(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(result, RunResult::Failed);
    let mut reason = None;
    while let Ok(e) = rx.try_recv() {
        if let Event::JobFinished { reason: r, .. } = e {
            reason = r;
        }
    }
    assert_eq!(
        reason.as_deref(),
        Some("job `a` uses `artifacts:`, but this run has no artifact store")
    );
}

#[tokio::test]
async fn implicit_downloads_ask_the_store_only_when_a_needed_job_can_have_uploaded() {
    let (result, log, _) = run("jobs:
  plain:
    steps: [{run: ok}]
  uploads:
    artifacts: { app: app }
    steps: [{run: ok}]
  after-plain:
    needs: [plain]
    steps: [{run: ok}]
  after-both:
    needs: [plain, uploads]
    steps: [{run: ok}]
")
    .await;
    assert_eq!(result, RunResult::Success);
    let downloads: Vec<&String> = log.iter().filter(|l| l.starts_with("download")).collect();
    assert_eq!(
        downloads,
        ["download after-both from [\"plain\", \"uploads\"] names None"]
    );
}
