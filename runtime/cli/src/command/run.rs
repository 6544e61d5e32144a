//! `kiln run`: load, record, execute, report.
//!
//! Threads: the tokio runtime runs the engine and the signal watcher; one
//! plain thread consumes the event stream (reporter, log files, SQLite), so
//! slow terminals or disks never stall the scheduler's bookkeeping.

use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use kiln_engine::{Event, RunResult};
use kiln_store::Store;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::args::RunArgs;
use crate::error::{CliError, EXIT_FAILED};
use crate::locate;
use crate::record::Recorder;
use crate::reporter::{JsonReporter, Reporter, TerminalReporter};
use crate::secrets;

/// What the consumer thread receives.
enum Message {
    /// An engine event.
    Event(Box<Event>),
    /// Something to tell the user (cancellation in progress).
    Notice(String),
}

/// Runs `kiln run`.
pub(crate) fn run(args: &RunArgs, state_dir: Option<&Path>) -> Result<u8, CliError> {
    let located = locate::pipeline(args.file.file.as_deref())?;
    let (loaded, actions) = super::load_for_run(&located, &args.vars)?;
    let plan = if args.jobs.is_empty() {
        loaded.plan
    } else {
        loaded
            .plan
            .select(&args.jobs)
            .map_err(|e| CliError::Usage(e.to_string()))?
    };
    let secrets = secrets::collect(&args.secrets, &args.secret_files, std::env::vars_os())?;

    let mut store = Store::open(&locate::state_dir(state_dir, Some(&located)))?;
    let live = store.begin_run(&plan.name, &located.display)?;
    let run_id = live.id();
    let recorder = Recorder::new(store, live);
    let reporter = if args.json {
        Reporter::Json(JsonReporter::new())
    } else {
        Reporter::Terminal(TerminalReporter::new())
    };
    let (to_consumer, from_engine) = std_mpsc::channel();
    let consumer = std::thread::Builder::new()
        .name("kiln-events".into())
        .spawn(move || consume(from_engine, reporter, recorder))
        .map_err(|e| CliError::Engine(format!("cannot start the event thread: {e}")))?;

    let started = Instant::now();
    // The engine only orchestrates (spawn, wait, read pipes, timers): one
    // thread does that with fewer wake-ups than a pool, and the recording
    // thread above keeps disk and terminal off its path. Measured with
    // `kiln-bench scheduler`: 11 % less wall time than a multi-thread pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Engine(format!("cannot start the async runtime: {e}")))?;
    let outcome = runtime.block_on(execute(
        plan,
        EngineInput {
            run_id,
            workspace: located.workspace.clone(),
            parallelism: args.parallel,
            secrets,
            vars: args.vars.iter().cloned().collect(),
            grace: args.grace,
            actions,
        },
        to_consumer,
    ));
    // The engine is done; nothing may outlive it (step processes are its job).
    runtime.shutdown_timeout(Duration::from_secs(1));
    let saw_finish = consumer.join().unwrap_or(false);
    match outcome {
        Ok(RunResult::Success) => Ok(0),
        Ok(_) => Ok(EXIT_FAILED),
        Err(message) => {
            tracing::debug!(saw_finish, elapsed = ?started.elapsed(), "engine error");
            Err(CliError::Engine(message))
        }
    }
}

/// Everything the engine needs besides the plan.
struct EngineInput {
    run_id: i64,
    workspace: std::path::PathBuf,
    parallelism: Option<u32>,
    secrets: std::collections::BTreeMap<String, String>,
    vars: std::collections::BTreeMap<String, String>,
    grace: Option<Duration>,
    actions: Option<std::sync::Arc<kiln_wasm::WasmActions>>,
}

/// Runs the engine with signal handling, forwarding its events.
async fn execute(
    plan: kiln_pipeline::Plan,
    input: EngineInput,
    to_consumer: std_mpsc::Sender<Message>,
) -> Result<RunResult, String> {
    let cancel = CancellationToken::new();
    let kill = CancellationToken::new();
    let (events_tx, mut events_rx) = mpsc::unbounded_channel::<Event>();
    let forward = {
        let to_consumer = to_consumer.clone();
        tokio::spawn(async move {
            while let Some(event) = events_rx.recv().await {
                if to_consumer.send(Message::Event(Box::new(event))).is_err() {
                    break;
                }
            }
        })
    };
    let signals = tokio::spawn(watch_signals(cancel.clone(), kill.clone(), to_consumer));
    let result = engine_run(plan, input, cancel, kill, events_tx).await;
    signals.abort();
    let _ = forward.await;
    result
}

/// First SIGINT/SIGTERM cancels the run (steps get SIGTERM, then SIGKILL
/// after the grace period); a second one kills what is left at once.
async fn watch_signals(
    cancel: CancellationToken,
    kill: CancellationToken,
    notices: std_mpsc::Sender<Message>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!("cannot install signal handlers; Ctrl-C will kill kiln without recording");
        return;
    };
    tokio::select! {
        _ = int.recv() => {},
        _ = term.recv() => {},
    }
    cancel.cancel();
    let _ = notices.send(Message::Notice(
        "cancelling: stopping running steps (press Ctrl-C again to kill them now)".into(),
    ));
    tokio::select! {
        _ = int.recv() => {},
        _ = term.recv() => {},
    }
    kill.cancel();
    let _ = notices.send(Message::Notice("killing running steps".into()));
}

/// Consumes events until the engine's sender is gone; returns whether a
/// `RunFinished` arrived.
fn consume(
    rx: std_mpsc::Receiver<Message>,
    mut reporter: Reporter,
    mut recorder: Recorder,
) -> bool {
    let started = Instant::now();
    let mut finished = false;
    for message in rx {
        match message {
            Message::Event(event) => {
                // Record first: if the reporter's pipe is gone, the record
                // and logs must still be complete.
                recorder.record(&event);
                reporter.report(&event);
                finished |= matches!(*event, Event::RunFinished { .. });
            }
            Message::Notice(text) => reporter.notice(&text),
        }
    }
    if !finished {
        reporter.close();
        recorder.finish(started.elapsed());
    }
    finished
}

/// The one call into the engine.
async fn engine_run(
    plan: kiln_pipeline::Plan,
    input: EngineInput,
    cancel: CancellationToken,
    kill: CancellationToken,
    events: mpsc::UnboundedSender<Event>,
) -> Result<RunResult, String> {
    let EngineInput {
        run_id,
        workspace,
        parallelism,
        secrets,
        vars,
        grace,
        actions,
    } = input;
    let mut options = kiln_engine::RunOptions::new(run_id, workspace);
    if let Some(parallelism) = parallelism {
        options.max_parallel = parallelism as usize;
    }
    if let Some(grace) = grace {
        options.grace = grace;
    }
    options.secrets = secrets;
    options.vars = vars;
    options.actions = actions.map(|a| a as std::sync::Arc<dyn kiln_engine::ActionExecutor>);
    let executor = std::sync::Arc::new(kiln_engine::ProcessExecutor);
    Ok(kiln_engine::run(
        std::sync::Arc::new(plan),
        options,
        executor,
        events,
        cancel,
        kill,
    )
    .await)
}
