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
    let (source, loaded) = super::load_for_use(&located, &args.vars)?;
    let plan = if args.jobs.is_empty() {
        loaded.plan
    } else {
        loaded
            .plan
            .select(&args.jobs)
            .map_err(|e| CliError::Usage(e.to_string()))?
    };
    let secrets = secrets::collect(&args.secrets, &args.secret_files, std::env::vars_os())?;
    let mode = if args.locked {
        kiln_fetch::Mode::Locked
    } else {
        kiln_fetch::Mode::Update
    };
    // Every plugin is fetched, verified and checked against kiln.lock,
    // then loaded and checked against its steps, before anything runs: a
    // digest mismatch or an ungranted capability never starts a step.
    let components = super::plugin::pipeline::resolve(&plan, &source, &located, mode)?;
    let state = locate::state_dir(state_dir, Some(&located));
    let plugin_run = std::sync::Arc::new(std::sync::OnceLock::new());
    let plugin_artifacts = crate::plugin_artifacts::PluginArtifacts::new(
        state.clone(),
        located.workspace.clone(),
        plugin_run.clone(),
    );
    let plugins = super::prepare_plugins(
        &source,
        &plan,
        &located,
        &components,
        std::sync::Arc::new(plugin_artifacts),
    )?;

    let engine = crate::containers::engine();
    if crate::containers::uses_containers(&plan) {
        // Docker's answer arrives while the store's writes are synced.
        engine.connect_early();
    }
    let mut store = Store::open(&state)?;
    let live = store.begin_run(&plan.name, &located.display)?;
    let run_id = live.id();
    let _ = plugin_run.set(run_id);
    // Only a crashed run (its record `interrupted`) can leave containers
    // behind: a run that ended removed its own, so the sweep is skipped
    // when there is none.
    let uses_containers = crate::containers::uses_containers(&plan);
    if uses_containers {
        // What a killed kiln left in /dev/shm (step scripts, maybe with
        // secrets): a directory listing, cheap enough for every run.
        kiln_docker::sweep_scratch();
    }
    let crashed = uses_containers && crate::containers::any_crashed(&store)?;
    let containers = crashed
        .then(|| {
            let finished = crate::containers::finished_runs(&store)?;
            Ok::<_, kiln_store::StoreError>(Sweep {
                state: crate::containers::state_label(&store),
                finished: Box::new(finished),
            })
        })
        .transpose()?;
    let owner = crate::containers::owner(&store, run_id);
    let recorder = Recorder::new(store, live);
    let reporter = if args.json {
        Reporter::Json(JsonReporter::new())
    } else {
        Reporter::Terminal(TerminalReporter::new())
    };
    let (to_consumer, from_engine) = std_mpsc::channel();
    let consumer = std::thread::Builder::new()
        .name("kiln-events".into())
        .spawn(move || {
            kiln_engine::process::leave_signals_to_the_engine_thread();
            consume(from_engine, reporter, recorder)
        })
        .map_err(|e| CliError::Engine(format!("cannot start the event thread: {e}")))?;

    let started = Instant::now();
    // The engine only orchestrates (spawn, wait, read pipes, timers): one
    // thread does that with fewer wake-ups than a pool, and the recording
    // thread above keeps disk and terminal off its path. Measured with
    // `kiln-bench scheduler`: 11 % less wall time than a multi-thread pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_start(kiln_engine::process::leave_signals_to_the_engine_thread)
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
            state,
            engine,
            owner,
            sweep: containers,
            actions: plugins.actions,
            deploy: plugins.deploy,
        },
        to_consumer,
        consumer.thread().clone(),
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
    /// The state directory, home of the artifact store.
    state: std::path::PathBuf,
    /// The Docker engine, asked for its version early when the plan uses it.
    engine: std::sync::Arc<kiln_docker::Engine>,
    /// Labels for this run's containers.
    owner: kiln_docker::Owner,
    /// Leftovers of finished runs to remove, when the plan uses containers.
    sweep: Option<Sweep>,
    /// Runs the `uses:` steps (`None`: the plan has none).
    actions: Option<std::sync::Arc<kiln_wasm::WasmActions>>,
    /// The strategies and health checks of the `deploy:` jobs.
    deploy: crate::deploy_plugins::DeployComponents,
}

/// The start-up sweep: containers of `state` whose run is `finished`.
struct Sweep {
    state: String,
    finished: Box<dyn Fn(i64) -> bool + Send + Sync>,
}

/// Runs the engine with signal handling; its events go to the consumer.
async fn execute(
    plan: kiln_pipeline::Plan,
    input: EngineInput,
    to_consumer: std_mpsc::Sender<Message>,
    consumer: std::thread::Thread,
) -> Result<RunResult, String> {
    let cancel = CancellationToken::new();
    let kill = CancellationToken::new();
    let events = ToConsumer {
        to_consumer: to_consumer.clone(),
        consumer,
    };
    let signals = tokio::spawn(watch_signals(cancel.clone(), kill.clone(), to_consumer));
    let containers = kiln_docker::DockerExecutor::new(input.engine.clone(), input.owner.clone());
    let result = engine_run(plan, input, containers.clone(), cancel, kill, events).await;
    signals.abort();
    // Step containers are removed in the background once their exit is
    // known; the last removals overlap recording the run's end (the event
    // thread's final commit), and kiln exits only when they are done.
    containers.settle().await;
    result
}

/// The engine's events, handed from its thread straight to the consumer's.
struct ToConsumer {
    to_consumer: std_mpsc::Sender<Message>,
    consumer: std::thread::Thread,
}

impl kiln_engine::EventSink for ToConsumer {
    fn emit(&self, event: Event) {
        let ends_run = matches!(event, Event::RunFinished { .. });
        // A consumer that is gone has nothing left to record or show.
        let _ = self.to_consumer.send(Message::Event(Box::new(event)));
        if ends_run {
            // The consumer may be gathering; the last burst waits for
            // nothing more.
            self.consumer.unpark();
        }
    }
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

/// Events recorded in one commit at most, so a flood of output lines
/// cannot hold back the record of a finished step for long.
const MAX_BATCH: usize = 512;

/// How long events may gather before they are recorded and shown: one
/// frame of a 25 Hz display, still below what a person notices as late.
/// Each commit rewrites every page the burst touched (a run's jobs finish
/// scattered over the `jobs` table), so fewer, larger bursts write less:
/// 40 ms instead of 10 halved the WAL written by a run of 2,000 no-op jobs
/// and took 2-3 % off its wall time (interleaved side by side).
const GATHER: Duration = Duration::from_millis(40);

impl Message {
    /// Whether nothing follows: the run is over, so waiting would only
    /// delay kiln's exit.
    fn ends_run(&self) -> bool {
        matches!(self, Message::Event(event) if matches!(**event, Event::RunFinished { .. }))
    }
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
    while let Ok(first) = rx.recv() {
        // Whatever queued up while we waited is recorded in one commit, and
        // only then shown: the record and logs must be complete even if the
        // reporter's pipe is gone, and a reader blocking our stdout must not
        // hold the database's write lock.
        let mut burst: Vec<Message> = std::iter::once(first)
            .chain(rx.try_iter().take(MAX_BATCH))
            .collect();
        if burst.len() < MAX_BATCH && !burst.iter().any(Message::ends_run) {
            gather(&rx, &mut burst, GATHER);
        }
        recorder.begin_batch();
        for message in &burst {
            if let Message::Event(event) = message {
                recorder.record(event);
            }
        }
        recorder.commit_batch();
        for message in burst {
            match message {
                Message::Event(event) => {
                    reporter.report(&event);
                    finished |= matches!(*event, Event::RunFinished { .. });
                }
                Message::Notice(text) => reporter.notice(&text),
            }
        }
        reporter.flush();
    }
    if !finished {
        reporter.close();
        recorder.finish(started.elapsed());
    }
    finished
}

/// Lets the next events join `burst` for up to `window` ([`GATHER`]): one
/// wake-up and one commit per window instead of per event saved a third of
/// this thread's work on short jobs.
/// The window closes early when the run's last event arrives (the engine's
/// side unparks this thread then), so a run ends as soon as it is recorded.
fn gather(rx: &std_mpsc::Receiver<Message>, burst: &mut Vec<Message>, window: Duration) {
    let deadline = Instant::now() + window;
    loop {
        // A park may end early (an unpark meant for an earlier wait); the
        // loop only ends at the deadline, a full batch or the run's end.
        std::thread::park_timeout(deadline.saturating_duration_since(Instant::now()));
        let before = burst.len();
        burst.extend(rx.try_iter().take(MAX_BATCH - before));
        if burst.len() >= MAX_BATCH
            || burst[before..].iter().any(Message::ends_run)
            || Instant::now() >= deadline
        {
            return;
        }
    }
}

/// The one call into the engine.
async fn engine_run(
    plan: kiln_pipeline::Plan,
    input: EngineInput,
    containers: kiln_docker::DockerExecutor,
    cancel: CancellationToken,
    kill: CancellationToken,
    events: ToConsumer,
) -> Result<RunResult, String> {
    let EngineInput {
        run_id,
        workspace,
        parallelism,
        secrets,
        vars,
        grace,
        state,
        engine,
        owner: _,
        sweep,
        actions,
        deploy,
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
    options.system_env = super::system_env().into_iter().collect();
    options.actions = actions.map(|a| a as std::sync::Arc<dyn kiln_engine::ActionExecutor>);
    options.deployer = Some(std::sync::Arc::new(super::deploy::CliDeployer::new(
        state.clone(),
        deploy,
    )));
    options.artifacts = Some(std::sync::Arc::new(
        crate::store_adapter::StoreAdapter::new(state),
    ));
    let sweeping = sweep.map(|Sweep { state, finished }| {
        // Alongside the run, not before it: the sweep never touches a
        // live run, this one included, and costs the run no time.
        let engine = engine.clone();
        tokio::spawn(async move {
            match kiln_docker::sweep(&engine, &state, None, finished).await {
                Ok(swept) if !swept.is_empty() => {
                    tracing::info!("{}", crate::containers::describe(&swept))
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "start-up sweep skipped"),
            }
        })
    });
    let executor = std::sync::Arc::new(
        kiln_engine::Routed::new(std::sync::Arc::new(kiln_engine::ProcessExecutor::default()))
            .with_containers(std::sync::Arc::new(containers)),
    );
    let result = kiln_engine::run(
        std::sync::Arc::new(plan),
        options,
        executor,
        events,
        cancel,
        kill,
    )
    .await;
    // The sweep ran alongside; let it finish rather than cut it off.
    if let Some(sweeping) = sweeping {
        let _ = tokio::time::timeout(Duration::from_secs(30), sweeping).await;
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_finished() -> Message {
        Message::Event(Box::new(Event::RunFinished {
            run: 1,
            result: RunResult::Success,
            duration: Duration::ZERO,
        }))
    }

    /// The window is an hour here: returning at all means the run's end
    /// closed it, as the forwarder's unpark does after `RunFinished`.
    #[test]
    fn the_runs_end_closes_the_gathering_window() {
        let (tx, rx) = std_mpsc::channel();
        let gatherer = std::thread::current();
        let sender = std::thread::spawn(move || {
            tx.send(Message::Notice("first".into())).unwrap();
            tx.send(run_finished()).unwrap();
            gatherer.unpark();
            tx
        });
        let started = Instant::now();
        let mut burst = Vec::new();
        gather(&rx, &mut burst, Duration::from_secs(3600));
        assert!(started.elapsed() < Duration::from_secs(600));
        assert_eq!(burst.len(), 2);
        assert!(burst[1].ends_run());
        drop(sender.join());
    }

    #[test]
    fn an_unpark_before_the_end_does_not_close_the_window() {
        let (tx, rx) = std_mpsc::channel();
        // A wake-up with nothing that ends the run: gathering goes on until
        // the window closes, and takes what arrived meanwhile.
        std::thread::current().unpark();
        tx.send(Message::Notice("early".into())).unwrap();
        let window = Duration::from_millis(30);
        let started = Instant::now();
        let mut burst = Vec::new();
        gather(&rx, &mut burst, window);
        assert!(started.elapsed() >= window);
        assert_eq!(burst.len(), 1);
        assert!(!burst[0].ends_run());
    }
}
