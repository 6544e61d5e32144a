//! `deploy:` jobs and `kiln deploy …` / `kiln approve` / `kiln reject`:
//! the CLI's side of kiln-deploy. [`CliDeployer`] is the engine's
//! [`Deployer`]: it turns the rendered request into a rollout and streams
//! the controller's progress as the job's output.
//!
//! Strategies and health checks are WASI components, loaded with the
//! run's other plugins ([`DeployComponents`]); the commands that act on a
//! recorded rollout load the recorded reference again.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kiln_deploy::contract::{ApprovalAnswer, KeyValue};
use kiln_deploy::controller::{Log, Tuning};
use kiln_deploy::journal::Journal;
use kiln_deploy::platform::{Platform, ProcessPlatform, Targets};
use kiln_deploy::proxy::{Router, Traffic};
use kiln_deploy::spec::{self, Readiness, RolloutSettings, RunSpec, ServiceSpec, Sticky};
use kiln_deploy::{Controller, HealthCheck, Outcome, resume};
use kiln_docker::DockerPlatform;
use kiln_engine::Stream;
use kiln_engine::deploy::{DeployRequest, DeployRunSpec, Deployer};
use kiln_engine::executor::{BoxFuture, OutputSender, StepControl, StepExit};
use kiln_pipeline::DeployTarget;
use tokio_util::sync::CancellationToken;

use crate::args::{DeployCommand, GateArgs};
use crate::deploy_plugins::DeployComponents;
use crate::error::{CliError, EXIT_FAILED};
use crate::locate;

/// Where instances run: both targets behind one platform, which starts an
/// instance on the target of what it runs and stops it by its handle, so
/// any command can stop what the journal records (a service may have
/// moved between targets, and `deploy resume` never sees the pipeline).
/// Docker is only contacted when a container is involved.
fn platform(docker: Arc<DockerPlatform>) -> Arc<dyn Platform> {
    Arc::new(Targets::new(Arc::new(ProcessPlatform::new()), docker))
}

fn docker_platform(state_dir: &Path) -> Arc<DockerPlatform> {
    Arc::new(DockerPlatform::new(
        crate::containers::engine(),
        crate::containers::state_dir_label(state_dir),
    ))
}

/// The platform of a rollout: a `docker` one first checks that the
/// engine answers and the image is there, so either failing is the job's
/// one clear error rather than a rollback.
async fn rollout_platform(
    state_dir: &Path,
    target: DeployTarget,
    run: &RunSpec,
) -> Result<Arc<dyn Platform>, String> {
    let docker = docker_platform(state_dir);
    if let (DeployTarget::Docker, RunSpec::Image(image)) = (target, run) {
        docker.check(image).await.map_err(|e| e.to_string())?;
    }
    Ok(platform(docker))
}

/// How a proxy process is started: this binary, `kiln deploy proxy`.
fn launch_proxy(listen: SocketAddr, socket: &Path) -> std::process::Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("kiln"));
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["deploy", "proxy", "--listen"])
        .arg(listen.to_string())
        .arg("--socket")
        .arg(socket);
    cmd
}

/// The engine's deployer.
#[derive(Debug)]
pub(crate) struct CliDeployer {
    state_dir: PathBuf,
    components: DeployComponents,
}

impl CliDeployer {
    /// Deploys with the strategies and health checks in `components`,
    /// keeping rollout state under `state_dir`.
    pub(crate) fn new(state_dir: PathBuf, components: DeployComponents) -> Self {
        Self {
            state_dir,
            components,
        }
    }
}

fn pairs(pairs: &[(String, String)]) -> Vec<KeyValue> {
    pairs
        .iter()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

fn to_spec(r: &DeployRequest) -> (ServiceSpec, RolloutSettings) {
    let (run, version) = match &r.run_spec {
        DeployRunSpec::Command(c) => (
            RunSpec::Command(c.clone()),
            r.version.clone().unwrap_or_default(),
        ),
        DeployRunSpec::Image(i) => (
            RunSpec::Image(i.clone()),
            r.version.clone().unwrap_or_else(|| spec::image_version(i)),
        ),
    };
    let spec = ServiceSpec {
        service: r.service.clone(),
        version,
        run,
        port: r.port,
        replicas: r.replicas,
        env: r.env.clone(),
        workdir: r.workspace.clone(),
        readiness: Readiness {
            path: r.readiness.path.clone(),
            timeout: r.readiness.timeout,
        },
        health_params: r
            .health
            .as_ref()
            .map(|h| pairs(&h.with))
            .unwrap_or_default(),
    };
    let settings = RolloutSettings {
        run: r.run,
        strategy: r.strategy.uses.clone(),
        strategy_params: pairs(&r.strategy.with),
        health: r.health.as_ref().map(|h| h.uses.clone()),
        health_digest: None,
        manual_approval: r.manual_approval,
        approval_timeout: r.approval_timeout,
        listen: r.proxy.listen,
        sticky: r.proxy.sticky.as_ref().map(|s| match s {
            kiln_pipeline::Sticky::Cookie(n) => Sticky::Cookie(n.clone()),
            kiln_pipeline::Sticky::Header(n) => Sticky::Header(n.clone()),
        }),
    };
    (spec, settings)
}

impl Deployer for CliDeployer {
    fn deploy(
        &self,
        request: DeployRequest,
        output: OutputSender,
        control: StepControl,
    ) -> BoxFuture<'static, StepExit> {
        let state_dir = self.state_dir.clone();
        let components = self.components.clone();
        Box::pin(async move {
            let log: Log = {
                let output = output.clone();
                Arc::new(move |line: &str| {
                    let _ = output.send((Stream::Stdout, format!("{line}\n").into_bytes()));
                })
            };
            match rollout(&state_dir, &components, request, log, control.stop).await {
                Ok(Outcome::Promoted) => StepExit::Exited(0),
                Ok(Outcome::RolledBack(_)) => StepExit::Exited(1),
                Err(message) => StepExit::Infrastructure(message),
            }
        })
    }
}

async fn rollout(
    state_dir: &Path,
    components: &DeployComponents,
    request: DeployRequest,
    log: Log,
    stop: CancellationToken,
) -> Result<Outcome, String> {
    let (spec, mut settings) = to_spec(&request);
    settings.health_digest = settings
        .health
        .as_deref()
        .and_then(|uses| components.digest(uses));
    let mut strategy = components.strategy(&settings.strategy)?;
    let health = settings
        .health
        .as_deref()
        .map(|uses| components.health(uses, log.clone()))
        .transpose()?;
    let journal = Journal::open(state_dir).map_err(|e| e.to_string())?;
    let platform = rollout_platform(state_dir, request.target, &spec.run).await?;
    let traffic = resume::ensure_proxy(&journal, &spec.service, settings.listen, &launch_proxy)
        .await
        .map_err(|e| e.to_string())?;
    log(&format!(
        "proxy of `{}` on http://{}",
        spec.service, settings.listen
    ));
    let controller = Controller {
        journal: &journal,
        platform,
        traffic: Arc::new(traffic),
        health,
        log,
        stop,
        tuning: Tuning::default(),
    };
    controller
        .rollout(spec, settings, strategy.as_mut())
        .await
        .map_err(|e| e.to_string())
}

fn state(state_dir: Option<&Path>) -> PathBuf {
    let located = match state_dir {
        Some(_) => None,
        None => locate::pipeline(None).ok(),
    };
    locate::state_dir(state_dir, located.as_ref())
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Engine(format!("cannot start the async runtime: {e}")))
}

fn print_log() -> Log {
    Arc::new(|line: &str| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    })
}

/// `kiln approve|reject RUN GATE`.
pub(crate) fn answer(
    gate: &GateArgs,
    approve: bool,
    state_dir: Option<&Path>,
) -> Result<u8, CliError> {
    let journal = Journal::open(&state(state_dir))?;
    let (answer, word) = if approve {
        (ApprovalAnswer::Approved, "approved")
    } else {
        (ApprovalAnswer::Rejected, "rejected")
    };
    let who = format!("{word} by pid {}", std::process::id());
    journal
        .answer(gate.run, &gate.gate, answer, &who)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    println!("gate `{}` of run {} {word}", gate.gate, gate.run);
    Ok(0)
}

/// `kiln deploy …`.
pub(crate) fn run(command: &DeployCommand, state_dir: Option<&Path>) -> Result<u8, CliError> {
    if let DeployCommand::Proxy { listen, socket } = command {
        // One traffic thread per core, up to four: a service's loopback
        // proxy needs no more, and many services each get their own.
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let rt = runtime()?;
        rt.block_on(kiln_deploy::proxy::run_daemon(*listen, socket, workers))?;
        return Ok(0);
    }
    if let DeployCommand::Simulate {
        script,
        strategy: uses,
    } = command
    {
        return simulate(script, uses);
    }
    let state_dir = state(state_dir);
    let journal = Journal::open(&state_dir)?;
    let platform = platform(docker_platform(&state_dir));
    match command {
        DeployCommand::History { service } => history(&journal, service),
        DeployCommand::Resume { service } => {
            runtime()?.block_on(resume_all(&journal, platform, service.as_deref()))
        }
        DeployCommand::Rollback { service } => {
            runtime()?.block_on(rollback(&journal, platform, service))
        }
        DeployCommand::Stop { service } => runtime()?.block_on(async {
            let c = offline_controller(&journal, platform, Arc::new(Arc::new(Router::new())));
            let n = resume::stop_service(&c, service).await?;
            println!("stopped `{service}`: {n} instances and its proxy");
            Ok(0)
        }),
        DeployCommand::Proxy { .. } | DeployCommand::Simulate { .. } => {
            unreachable!("handled above")
        }
    }
}

fn offline_controller<'a>(
    journal: &'a Journal,
    platform: Arc<dyn Platform>,
    traffic: Arc<dyn Traffic>,
) -> Controller<'a> {
    Controller {
        journal,
        platform,
        traffic,
        health: None,
        log: print_log(),
        stop: CancellationToken::new(),
        tuning: Tuning::default(),
    }
}

async fn resume_all(
    journal: &Journal,
    platform: Arc<dyn Platform>,
    service: Option<&str>,
) -> Result<u8, CliError> {
    let unfinished = journal.unfinished(service)?;
    if unfinished.is_empty() {
        println!(
            "nothing to resume: every rollout{} finished",
            service.map_or(String::new(), |s| format!(" of `{s}`"))
        );
        return Ok(0);
    }
    let mut code = 0;
    for record in unfinished {
        let traffic = resume::ensure_proxy(
            journal,
            &record.service,
            record.settings.listen,
            &launch_proxy,
        )
        .await?;
        let mut c = offline_controller(journal, platform.clone(), Arc::new(traffic));
        c.health = recorded_health(&record.settings, &record.spec.workdir);
        match resume::resume(&c, &record).await? {
            Outcome::Promoted => {}
            Outcome::RolledBack(_) => code = EXIT_FAILED,
        }
    }
    Ok(code)
}

async fn rollback(
    journal: &Journal,
    platform: Arc<dyn Platform>,
    service: &str,
) -> Result<u8, CliError> {
    let record = journal.service(service)?;
    let listen = record.proxy.as_ref().map(|p| p.listen).ok_or_else(|| {
        CliError::Usage(format!("service `{service}` has never been deployed here"))
    })?;
    let traffic = resume::ensure_proxy(journal, service, listen, &launch_proxy).await?;
    let mut c = offline_controller(journal, platform, Arc::new(traffic));
    // The version rolled back to is checked as it was when it was promoted.
    if let Some(stable) = &record.stable
        && let Ok(source) = resume::rollback_source(journal, service, stable)
    {
        c.health = recorded_health(&source.settings, &source.spec.workdir);
    }
    match resume::rollback_service(&c, service, 0).await? {
        Outcome::Promoted => Ok(0),
        Outcome::RolledBack(_) => Ok(EXIT_FAILED),
    }
}

/// The health check a rollout recorded, loaded again (a local path is
/// relative to the workspace it was deployed from), and only if its bytes
/// are the ones the rollout used. Otherwise none, with a warning:
/// recovering (resume, a rollback by hand) must not wait on a component
/// that changed or is gone. It restores a version that was serving, and
/// readiness still gates every instance it starts.
fn recorded_health(settings: &RolloutSettings, workspace: &Path) -> Option<Arc<dyn HealthCheck>> {
    let uses = settings.health.as_deref()?;
    let loaded = DeployComponents::standalone(uses, workspace, settings.health_digest.as_deref())
        .and_then(|loaded| loaded.health(uses, print_log()));
    match loaded {
        Ok(check) => Some(check),
        Err(e) => {
            eprintln!(
                "warning: cannot load the recorded health check: {e}; going on with readiness checks only"
            );
            None
        }
    }
}

fn history(journal: &Journal, service: &str) -> Result<u8, CliError> {
    let rows = journal.history(service)?;
    if rows.is_empty() {
        println!("no rollouts of `{service}` recorded");
        return Ok(0);
    }
    let now = SystemTime::now();
    println!(
        "{:>7}  {:>4}  {:<12} {:<12} {:<12} {:<10} {:>8}  REASON",
        "ROLLOUT", "RUN", "VERSION", "FROM", "OUTCOME", "STARTED", "DURATION"
    );
    for r in rows {
        let started = UNIX_EPOCH + Duration::from_millis(r.started_ms.max(0) as u64);
        let duration = r
            .finished_ms
            .map(|f| {
                crate::units::duration(Duration::from_millis((f - r.started_ms).max(0) as u64))
            })
            .unwrap_or_else(|| "-".into());
        println!(
            "{:>7}  {:>4}  {:<12} {:<12} {:<12} {:<10} {:>8}  {}",
            r.id,
            r.run,
            r.candidate,
            r.stable.as_deref().unwrap_or("-"),
            r.status,
            crate::units::ago(started, now),
            duration,
            r.reason.as_deref().unwrap_or("")
        );
    }
    Ok(0)
}

fn simulate(path: &Path, uses: &str) -> Result<u8, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
        path: path.to_owned(),
        source,
    })?;
    let script: kiln_deploy::simulate::Script = serde_json::from_str(&text).map_err(|e| {
        CliError::Usage(format!(
            "`{}` is not a valid simulation script: {e}",
            path.display()
        ))
    })?;
    let base = std::env::current_dir().map_err(|source| CliError::Io {
        path: PathBuf::from("."),
        source,
    })?;
    let mut strategy = DeployComponents::standalone(uses, &base, None)
        .and_then(|loaded| loaded.strategy(uses))
        .map_err(CliError::Usage)?;
    let inputs: Vec<String> = strategy
        .metadata()
        .inputs
        .into_iter()
        .map(|i| i.name)
        .collect();
    if let Some(unknown) = script.params.keys().find(|k| !inputs.contains(k)) {
        let takes: Vec<String> = inputs.iter().map(|i| format!("`{i}`")).collect();
        return Err(CliError::Usage(format!(
            "`{}`: strategy `{uses}` has no input `{unknown}`; it takes {}",
            path.display(),
            takes.join(", ")
        )));
    }
    let (steps, end) = kiln_deploy::simulate::simulate(strategy.as_mut(), &script);
    for s in &steps {
        println!("{:>8}  {}", format!("{}ms", s.at_ms), s.decision);
    }
    use kiln_deploy::simulate::SimulationEnd as End;
    let (line, code) = match end {
        End::Promoted => ("promoted".to_owned(), 0),
        End::RolledBack(reason) => (format!("rolled back: {reason}"), EXIT_FAILED),
        End::DoneWithoutPromotion => (
            "done without promoting (the controller would roll back)".to_owned(),
            EXIT_FAILED,
        ),
        End::StrategyError(e) => (
            format!("strategy error: {e} (the controller would roll back)"),
            EXIT_FAILED,
        ),
        End::TooManyDecisions => (
            format!("no end after {} decisions", script.max_decisions),
            EXIT_FAILED,
        ),
    };
    println!("{line}");
    Ok(code)
}
