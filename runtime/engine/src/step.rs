//! The steps of one job attempt, in order: conditions, rendering, running
//! through the executor under deadlines, masking output, reading outputs.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use kiln_pipeline::expr::{Context, Expr, Status, Template};
use kiln_pipeline::{Job, Step, StepAction};

use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio::time::Instant as Deadline;
use tokio_util::sync::CancellationToken;

use crate::context;
use crate::event::{Event, StepResult, Stream};
use crate::executor::{
    BoxFuture, ContainerRequest, Env, JobRequest, OutputSender, Placement, ServiceRequest,
    StepControl, StepExit, StepRequest,
};
use crate::lines::LineSplitter;
use crate::outputs;
use crate::run::Shared;

mod transfer;
mod uses;

/// Why an attempt did not succeed, for the retry decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    Exit,
    Timeout,
    Infrastructure,
    Cancelled,
}

/// The state of one attempt while its steps run.
pub(crate) struct StepRunner<'a> {
    shared: &'a Arc<Shared>,
    job: &'a Job,
    attempt: u32,
    /// What `${{ }}` expressions see, built on first use: most jobs have
    /// no expression at all, and building `needs`, `matrix` and `vars` as
    /// JSON for each was a large part of kiln's own work per job.
    values: Option<Map<String, Value>>,
    /// The job's env, rendered once per attempt.
    env: Vec<(String, String)>,
    deadline: Option<Deadline>,
    failure: Option<(FailureKind, String)>,
    /// Every key any step wrote to `$KILN_OUTPUT`, later writes winning.
    written: Vec<(String, String)>,
    /// The job's `cache:`, once restored.
    cache: Option<transfer::CacheState>,
}

impl<'a> StepRunner<'a> {
    pub(crate) fn new(shared: &'a Arc<Shared>, job: &'a Job, attempt: u32) -> Self {
        Self {
            shared,
            job,
            attempt,
            values: None,
            env: Vec::new(),
            deadline: job.timeout.map(|t| Deadline::now() + t),
            failure: None,
            written: Vec::new(),
            cache: None,
        }
    }

    /// The attempt's context values, built now if this is their first use.
    fn values(&mut self) -> &mut Map<String, Value> {
        let (shared, job, env) = (self.shared, self.job, &self.env);
        self.values.get_or_insert_with(|| {
            let plan = &shared.plan;
            let needs = context::needs(job, &plan.jobs, &shared.finished);
            let mut values = context::base(&shared.options.vars, job, needs, &shared.temp);
            values.insert(
                "env".into(),
                context::to_object(env.iter().map(|(k, v)| (k, v))),
            );
            values
        })
    }

    /// The attempt's context, moved out of the runner: put it back with
    /// `self.values = Some(cx.values)`.
    fn take_context(&mut self, status: Status) -> Context<'a> {
        self.values();
        let shared: &'a Arc<Shared> = self.shared;
        Context {
            values: self.values.take().unwrap_or_default(),
            status,
            workspace: Some(&shared.options.workspace),
        }
    }

    /// Lends the attempt's context to `render`, with `secrets` (those the
    /// templates at hand name) added meanwhile. The context is moved, not
    /// copied: a copy per step was a large part of the engine's own work
    /// on short jobs. What `render` adds to `env` and `secrets` belongs to
    /// one step and is undone afterwards. `render` gets the runner, whose
    /// `values` are empty meanwhile.
    fn with_context<R>(
        &mut self,
        status: Status,
        secrets: Map<String, Value>,
        render: impl FnOnce(&Self, &mut Context<'a>) -> R,
    ) -> R {
        const SCOPED: [&str; 2] = ["secrets", "env"];
        let mut cx = self.take_context(status);
        let saved = SCOPED.map(|key| cx.values.get(key).cloned());
        if let Some(Value::Object(all)) = cx.values.get_mut("secrets") {
            all.extend(secrets);
        }
        let result = render(self, &mut cx);
        for (key, value) in SCOPED.into_iter().zip(saved) {
            if let Some(value) = value {
                cx.values.insert(key.into(), value);
            }
        }
        self.values = Some(cx.values);
        result
    }

    /// [`Self::with_context`] for rendering `templates`, except that the
    /// context is not built when none of them can read it (all literal,
    /// the usual case): `render` then gets an empty one.
    fn with_context_for<'t, R>(
        &mut self,
        status: Status,
        templates: impl IntoIterator<Item = &'t Template>,
        secrets: Map<String, Value>,
        render: impl FnOnce(&Self, &mut Context<'a>) -> R,
    ) -> R {
        if templates.into_iter().all(Template::is_literal) {
            let shared: &'a Arc<Shared> = self.shared;
            let mut cx = Context {
                values: Map::new(),
                status,
                workspace: Some(&shared.options.workspace),
            };
            return render(self, &mut cx);
        }
        self.with_context(status, secrets, render)
    }

    /// Renders the job's env, container and services for `prepare`.
    pub(crate) fn job_request(&mut self) -> Result<JobRequest<'a>, String> {
        self.job_env()?;
        let job = self.job;
        let templates = job.image.iter().chain(
            job.services
                .iter()
                .flat_map(|s| std::iter::once(&s.image).chain(s.env.iter().map(|(_, t)| t))),
        );
        let granted = self.secrets_for(templates.clone());
        let (container, services) =
            self.with_context_for(Status::Success, templates, granted, |_, cx| {
                let container = match &job.image {
                    Some(image) => Some(ContainerRequest {
                        image: render_image(image, cx, "image")?,
                        options: job.container.clone(),
                    }),
                    None => None,
                };
                let mut services = Vec::with_capacity(job.services.len());
                for service in &job.services {
                    let mut env = Vec::new();
                    context::render_env(&service.env, &mut env, cx)?;
                    services.push(ServiceRequest {
                        name: service.name.clone(),
                        image: render_image(
                            &service.image,
                            cx,
                            &format!("services.{}.image", service.name),
                        )?,
                        env,
                        ports: service.ports.clone(),
                        command: service.command.clone(),
                        health: service.health.clone(),
                    });
                }
                Ok::<_, String>((container, services))
            })?;
        Ok(JobRequest {
            job,
            attempt: self.attempt,
            workspace: self.shared.options.workspace.clone(),
            container,
            services,
            stop: CancellationToken::new(),
        })
    }

    /// When the attempt's time is up (`timeout:` of the job), if ever.
    pub(crate) fn deadline(&self) -> Option<Deadline> {
        self.deadline
    }

    pub(crate) async fn run_steps(&mut self) -> Option<(FailureKind, String)> {
        if let Err(message) = self.before_steps().await {
            return Some((FailureKind::Infrastructure, message));
        }
        for (index, step) in self.job.steps.iter().enumerate() {
            self.run_step(index, step).await;
        }
        if self.failure.is_none()
            && let Err(message) = self.after_steps().await
        {
            self.failure = Some((FailureKind::Infrastructure, message));
        }
        self.failure.take()
    }

    /// Pipeline and job env, rendered once per attempt.
    fn job_env(&mut self) -> Result<(), String> {
        let (plan, job) = (&self.shared.plan, self.job);
        let entries = || plan.env.iter().chain(&job.env);
        if let Some(env) = context::literal_env(entries()) {
            // The context, if ever built, takes it from `self.env`.
            self.env = env;
            return Ok(());
        }
        let secrets = self.secrets_for(entries().map(|(_, t)| t));
        self.values()
            .insert("secrets".into(), Value::Object(secrets));
        let mut env = Vec::new();
        // Unlike a step's, the job's env stays in the context.
        let mut cx = self.take_context(Status::Success);
        let rendered = context::render_env(&plan.env, &mut env, &mut cx)
            .and_then(|()| context::render_env(&job.env, &mut env, &mut cx));
        self.values = Some(cx.values);
        rendered?;
        self.env = env;
        Ok(())
    }

    /// The `secrets` context for templates: only the secrets they name.
    fn secrets_for<'t>(&self, templates: impl Iterator<Item = &'t Template>) -> Map<String, Value> {
        let mut granted = Map::new();
        for template in templates {
            for (context, name) in template.references() {
                if !context.eq_ignore_ascii_case("secrets") || name.is_empty() {
                    continue;
                }
                let value = self.shared.secret(&name);
                granted.insert(name, value.map(Value::String).unwrap_or(Value::Null));
            }
        }
        granted
    }

    fn current_status(&self) -> Status {
        context::status(self.shared.stop.is_cancelled(), self.failure.is_some())
    }

    async fn run_step(&mut self, index: usize, step: &Step) {
        let id = self.job.id;
        self.shared.emit(Event::StepStarted {
            job: id,
            step: index,
            name: step.name.clone(),
            attempt: self.attempt,
        });
        let started = Instant::now();
        let status = self.current_status();
        let (result, exit_code, outputs) = match self.should_run(step, status) {
            Ok(false) => (StepResult::Skipped, None, Vec::new()),
            Ok(true) => self.execute(index, step).await,
            Err(message) => {
                self.note(index, &message);
                (StepResult::Failed, None, Vec::new())
            }
        };
        let result = match result {
            StepResult::Failed | StepResult::InfrastructureError if step.continue_on_error => {
                StepResult::FailedIgnored
            }
            other => other,
        };
        self.record_failure(step, index, result);
        for (k, v) in &outputs {
            context::set(&mut self.written, k, v.clone());
        }
        self.record_step(step, result, outputs);
        self.shared.emit(Event::StepFinished {
            job: id,
            step: index,
            result,
            exit_code,
            duration: started.elapsed(),
        });
    }

    fn should_run(&mut self, step: &Step, status: Status) -> Result<bool, String> {
        let Some(condition) = &step.condition else {
            return Ok(status == Status::Success);
        };
        if !condition.uses_status_function() && status != Status::Success {
            return Ok(false);
        }
        self.with_context(status, Map::new(), |_, cx| eval_condition(condition, cx))
    }

    fn record_failure(&mut self, step: &Step, index: usize, result: StepResult) {
        if self.failure.is_some() {
            return;
        }
        let what = format!("step {} `{}`", index + 1, step.name);
        let kind = match result {
            StepResult::Failed => FailureKind::Exit,
            StepResult::TimedOut => FailureKind::Timeout,
            StepResult::InfrastructureError => FailureKind::Infrastructure,
            StepResult::Cancelled => FailureKind::Cancelled,
            StepResult::Success | StepResult::FailedIgnored | StepResult::Skipped => return,
        };
        let reason = match kind {
            FailureKind::Exit => format!("{what} failed"),
            FailureKind::Timeout => format!("{what} timed out"),
            FailureKind::Infrastructure => format!("{what} could not run"),
            FailureKind::Cancelled => format!("{what} was cancelled"),
        };
        self.failure = Some((kind, reason));
    }

    fn record_step(&mut self, step: &Step, result: StepResult, outputs: Vec<(String, String)>) {
        let Some(step_id) = &step.id else { return };
        let conclusion = match result {
            StepResult::Success | StepResult::FailedIgnored => "success",
            StepResult::Skipped => "skipped",
            StepResult::Cancelled => "cancelled",
            _ => "failure",
        };
        let outcome = match result {
            StepResult::FailedIgnored => "failure",
            _ => conclusion,
        };
        let outputs: Map<String, Value> = outputs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        if let Some(Value::Object(steps)) = self.values().get_mut("steps") {
            steps.insert(
                step_id.clone(),
                serde_json::json!({ "outputs": outputs, "outcome": outcome, "conclusion": conclusion }),
            );
        }
    }

    /// A line from kiln itself in the step's output (and so its log).
    fn note(&self, index: usize, message: &str) {
        self.shared.emit(Event::Output {
            job: self.job.id,
            step: index,
            stream: Stream::Stderr,
            line: self
                .shared
                .masker
                .mask(&format!("kiln: {message}"))
                .into_owned(),
        });
    }

    async fn execute(
        &mut self,
        index: usize,
        step: &Step,
    ) -> (StepResult, Option<i32>, Vec<(String, String)>) {
        if let Some((result, why)) = self.stopped_before_start() {
            self.note(index, &format!("step not started: {why}"));
            return (result, None, Vec::new());
        }
        let (script, shell, working_directory) = match &step.action {
            StepAction::Run {
                script,
                shell,
                working_directory,
            } => (script, shell, working_directory),
            StepAction::Uses {
                reference,
                with,
                permissions,
                ..
            } => {
                return self
                    .execute_uses(index, step, reference, with, permissions)
                    .await;
            }
            StepAction::UploadArtifact { name, path } => {
                return (self.upload_step(index, name, path).await, None, Vec::new());
            }
            StepAction::DownloadArtifact { name } => {
                return (self.download_step(index, name).await, None, Vec::new());
            }
            StepAction::Unsupported { message, .. } => {
                self.note(index, message);
                return (StepResult::InfrastructureError, None, Vec::new());
            }
            StepAction::Deploy(deploy) => return self.deploy(index, step, deploy).await,
        };
        let request = match self.request(index, step, script, shell, working_directory.as_ref()) {
            Ok(request) => request,
            Err(message) => {
                self.note(index, &message);
                return (StepResult::Failed, None, Vec::new());
            }
        };
        let executor = self.shared.executor.clone();
        let (result, exit) = self
            .drive(index, step, |tx, control| {
                executor.run_step(request, tx, control)
            })
            .await;
        let outputs = match self.read_outputs(index) {
            Ok(outputs) => outputs,
            Err(message) => {
                self.note(index, &message);
                return (StepResult::Failed, exit, Vec::new());
            }
        };
        (result, exit, outputs)
    }

    /// A step whose `if:` lets it run after the job's deadline passed or
    /// once the run is stopping would only be started to be stopped at once:
    /// whether it got anything done would be a race between its start and
    /// the signal. It is not started at all, so the result is the same on
    /// every run.
    fn stopped_before_start(&self) -> Option<(StepResult, &'static str)> {
        if self.shared.stop.is_cancelled() {
            return Some(if self.shared.pipeline_timed_out.load(Ordering::SeqCst) {
                (StepResult::TimedOut, "the pipeline had timed out")
            } else {
                (StepResult::Cancelled, "the run was cancelled")
            });
        }
        self.deadline
            .is_some_and(|deadline| deadline <= Deadline::now())
            .then_some((StepResult::TimedOut, "the job had timed out"))
    }

    fn output_file(&self, index: usize) -> PathBuf {
        self.shared.temp.join(self.output_file_name(index))
    }

    fn output_file_name(&self, index: usize) -> String {
        format!("{}-{}-{}.out", self.job.id.0, self.attempt, index)
    }

    fn request(
        &mut self,
        index: usize,
        step: &Step,
        script: &Template,
        shell: &[String],
        working_directory: Option<&Template>,
    ) -> Result<StepRequest, String> {
        let templates = std::iter::once(script)
            .chain(step.env.iter().map(|(_, t)| t))
            .chain(working_directory)
            .chain(&step.image);
        let step_secrets = self.secrets_for(templates.clone());
        for (name, value) in &step_secrets {
            if value.is_null() {
                self.note(
                    index,
                    &format!("secret `{name}` is not set; it renders as ''"),
                );
            }
        }
        let status = self.current_status();
        self.with_context_for(status, templates, step_secrets, |this, cx| {
            this.render_request(index, step, script, shell, working_directory, cx)
        })
    }

    /// What every host step inherits: the run's environment.
    fn host_env(&self) -> Env {
        Env::inheriting(self.shared.system_env.clone())
    }

    /// A step's environment: `base`, then the job's env, then the step's
    /// own `env:` rendered in order.
    fn step_env(&self, mut env: Env, step: &Step, cx: &mut Context<'_>) -> Result<Env, String> {
        for (k, v) in &self.env {
            env.set(k, v.clone());
        }
        let mut own = Vec::new();
        context::render_env(&step.env, &mut own, cx)?;
        for (k, v) in own {
            env.set(&k, v);
        }
        Ok(env)
    }

    fn render_request(
        &self,
        index: usize,
        step: &Step,
        script: &Template,
        shell: &[String],
        working_directory: Option<&Template>,
        cx: &mut Context<'_>,
    ) -> Result<StepRequest, String> {
        let placement = match (&step.image, &self.job.image) {
            (Some(image), _) => Placement::Container(ContainerRequest {
                image: render_image(image, cx, "image")?,
                options: self.job.container.clone(),
            }),
            (None, Some(_)) => Placement::JobContainer,
            (None, None) => Placement::Host,
        };
        // A container's env starts from its image's, not from the host's:
        // the host's PATH or HOME would break the image.
        let mut env = self.step_env(
            match placement {
                Placement::Host => self.host_env(),
                _ => Env::default(),
            },
            step,
            cx,
        )?;
        let literal_script = script.is_literal();
        let script = match script.as_literal() {
            Some(text) => text.to_owned(),
            None => script
                .render(cx)
                .map_err(|e| format!("cannot evaluate the script: {e}"))?,
        };
        let workspace = &self.shared.options.workspace;
        let workdir = match working_directory {
            Some(dir) => workspace.join(
                dir.render(cx)
                    .map_err(|e| format!("cannot evaluate `working-directory`: {e}"))?,
            ),
            None => workspace.clone(),
        };
        let output_file = self.output_file(index);
        let kiln_vars = [
            ("CI", "true".to_owned()),
            ("KILN", "true".to_owned()),
            ("KILN_RUN_ID", self.shared.options.run_id.to_string()),
            ("KILN_JOB", self.job.name.clone()),
            ("KILN_WORKSPACE", workspace.display().to_string()),
            ("KILN_OUTPUT", output_file.display().to_string()),
        ];
        for (k, v) in kiln_vars {
            env.set(k, v);
        }
        Ok(StepRequest {
            job: self.job.name.clone(),
            step: index,
            script,
            literal_script,
            shell: shell.to_vec(),
            workdir,
            env,
            script_path: self
                .shared
                .temp
                .join(format!("{}-{}-{}.sh", self.job.id.0, self.attempt, index)),
            workspace: workspace.clone(),
            placement,
        })
    }

    /// The earlier of the step's timeout and the job's deadline.
    fn step_deadline(&self, step: &Step) -> Option<Deadline> {
        let step_deadline = step.timeout.map(|t| Deadline::now() + t);
        match (step_deadline, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the request, streaming masked lines, enforcing step and job
    /// deadlines and the run's stop.
    async fn drive(
        &self,
        index: usize,
        step: &Step,
        start: impl FnOnce(OutputSender, StepControl) -> BoxFuture<'static, StepExit>,
    ) -> (StepResult, Option<i32>) {
        let deadline = self.step_deadline(step);
        let (stopped_by, status) = self.supervise(index, deadline, start).await;
        if let Some(result) = stopped_by {
            let what = match result {
                StepResult::TimedOut => "timed out",
                _ => "was cancelled",
            };
            self.note(index, &format!("step {what}; its processes were stopped"));
            let code = match status {
                StepExit::Exited(code) => Some(code),
                _ => None,
            };
            return (result, code);
        }
        match status {
            StepExit::Exited(0) => (StepResult::Success, Some(0)),
            StepExit::Exited(code) => (StepResult::Failed, Some(code)),
            StepExit::Signaled(signal) => {
                self.note(index, &format!("step killed by signal {signal}"));
                (StepResult::Failed, None)
            }
            StepExit::Infrastructure(message) => {
                self.note(index, &message);
                (StepResult::InfrastructureError, None)
            }
        }
    }

    /// Starts a unit of work (a script or a plugin), streams its masked
    /// output lines, and stops it at `deadline` or when the run stops.
    /// Returns why it was stopped, if it was, and what it returned.
    async fn supervise<T>(
        &self,
        index: usize,
        deadline: Option<Deadline>,
        start: impl FnOnce(OutputSender, StepControl) -> BoxFuture<'static, T>,
    ) -> (Option<StepResult>, T) {
        let stop = CancellationToken::new();
        let control = StepControl {
            stop: stop.clone(),
            kill: self.shared.kill.clone(),
            grace: self.shared.options.grace,
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut exit = start(tx, control);
        let mut splitters = [LineSplitter::default(), LineSplitter::default()];
        let mut stopped_by: Option<StepResult> = None;
        let masker = &self.shared.masker;
        let emit = |stream: Stream, line: String| {
            self.shared.emit(Event::Output {
                job: self.job.id,
                step: index,
                stream,
                line,
            })
        };
        let status = loop {
            tokio::select! {
                biased;
                chunk = rx.recv() => match chunk {
                    Some((stream, bytes)) => {
                        splitters[stream as usize].push(&bytes, masker, |l| emit(stream, l));
                    }
                    None => break exit.await,
                },
                status = &mut exit => break status,
                _ = sleep_until(deadline), if stopped_by.is_none() => {
                    stopped_by = Some(StepResult::TimedOut);
                    stop.cancel();
                }
                _ = self.shared.stop.cancelled(), if stopped_by.is_none() => {
                    stopped_by = Some(if self.shared.pipeline_timed_out.load(Ordering::SeqCst) {
                        StepResult::TimedOut
                    } else {
                        StepResult::Cancelled
                    });
                    stop.cancel();
                }
            }
        };
        while let Some((stream, bytes)) = rx.recv().await {
            splitters[stream as usize].push(&bytes, masker, |l| emit(stream, l));
        }
        for (stream, splitter) in [Stream::Stdout, Stream::Stderr]
            .into_iter()
            .zip(&mut splitters)
        {
            splitter.finish(masker, |l| emit(stream, l));
        }
        // A unit that ended after its deadline timed out, even when it ended
        // before the timer branch above ran (a host interrupting its guest at
        // the deadline, a busy runtime polling timers late).
        if stopped_by.is_none() && deadline.is_some_and(|d| d <= Deadline::now()) {
            stopped_by = Some(StepResult::TimedOut);
        }
        (stopped_by, status)
    }

    /// Renders a `deploy:` job's templates and drives its rollout like a
    /// step (output, deadlines and cancellation are the same).
    async fn deploy(
        &mut self,
        index: usize,
        step: &Step,
        deploy: &kiln_pipeline::Deploy,
    ) -> (StepResult, Option<i32>, Vec<(String, String)>) {
        let Some(deployer) = self.shared.options.deployer.clone() else {
            self.note(
                index,
                "this build of kiln cannot run `deploy:` jobs (no deployer)",
            );
            return (StepResult::InfrastructureError, None, Vec::new());
        };
        let request = match self.deploy_request(deploy) {
            Ok(request) => request,
            Err(message) => {
                self.note(index, &message);
                return (StepResult::Failed, None, Vec::new());
            }
        };
        let (result, exit) = self
            .drive(index, step, |tx, control| {
                deployer.deploy(request, tx, control)
            })
            .await;
        (result, exit, Vec::new())
    }

    fn deploy_request(
        &mut self,
        deploy: &kiln_pipeline::Deploy,
    ) -> Result<crate::DeployRequest, String> {
        // Like a step, the rollout sees only the secrets its own fields name.
        let named = self.secrets_for(
            deploy
                .env
                .iter()
                .chain(&deploy.strategy.with)
                .chain(deploy.health.iter().flat_map(|h| &h.with))
                .map(|(_, t)| t),
        );
        let status = self.current_status();
        self.with_context(status, named, |this, cx| {
            this.render_deploy_request(deploy, cx)
        })
    }

    fn render_deploy_request(
        &self,
        deploy: &kiln_pipeline::Deploy,
        cx: &Context<'_>,
    ) -> Result<crate::DeployRequest, String> {
        use crate::deploy::{DeployRunSpec, RenderedPlugin};
        use kiln_pipeline::DeployRun;
        let render = |what: &str, t: &Template| {
            t.render(cx)
                .map_err(|e| format!("cannot evaluate `deploy.{what}`: {e}"))
        };
        let pairs =
            |what: &str, pairs: &[(String, Template)]| -> Result<Vec<(String, String)>, String> {
                pairs
                    .iter()
                    .map(|(k, t)| Ok((k.clone(), render(&format!("{what}.{k}"), t)?)))
                    .collect()
            };
        let plugin = |what: &str, p: &kiln_pipeline::PluginUse| -> Result<RenderedPlugin, String> {
            Ok(RenderedPlugin {
                uses: p.uses.clone(),
                with: pairs(&format!("{what}.with"), &p.with)?,
            })
        };
        let mut env = self.env.clone();
        env.extend(pairs("env", &deploy.env)?);
        Ok(crate::DeployRequest {
            run: self.shared.options.run_id,
            job: self.job.name.clone(),
            workspace: self.shared.options.workspace.clone(),
            target: deploy.target,
            service: deploy.service.clone(),
            run_spec: match &deploy.run {
                DeployRun::Command(t) => DeployRunSpec::Command(render("command", t)?),
                DeployRun::Image(t) => DeployRunSpec::Image(render("image", t)?),
            },
            version: deploy
                .version
                .as_ref()
                .map(|t| render("version", t))
                .transpose()?,
            port: deploy.port,
            replicas: deploy.replicas,
            env,
            readiness: deploy.readiness.clone(),
            strategy: plugin("strategy", &deploy.strategy)?,
            health: deploy
                .health
                .as_ref()
                .map(|h| plugin("health", h))
                .transpose()?,
            manual_approval: deploy.manual_approval,
            approval_timeout: deploy.approval_timeout,
            proxy: deploy.proxy.clone(),
        })
    }

    /// What step `index` wrote to `$KILN_OUTPUT`, masked; the file is
    /// removed once read.
    fn read_outputs(&self, index: usize) -> Result<Vec<(String, String)>, String> {
        let name = self.output_file_name(index);
        if !self.shared.temp_holds(&name) {
            return Ok(Vec::new());
        }
        let path = self.shared.temp.join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("cannot read `$KILN_OUTPUT`: {e}")),
        };
        let _ = std::fs::remove_file(&path);
        outputs::parse(&text)
            .map(|pairs| {
                pairs
                    .into_iter()
                    .map(|(k, v)| (k, self.shared.masker.mask(&v).into_owned()))
                    .collect()
            })
            .map_err(|e| format!("invalid `$KILN_OUTPUT`: {e}"))
    }

    /// Declared `outputs:` rendered, or every step output when none are
    /// declared.
    pub(crate) fn job_outputs(&mut self) -> Vec<(String, String)> {
        if self.job.outputs.is_empty() {
            return self.written.clone();
        }
        self.with_context(Status::Success, Map::new(), |this, cx| {
            this.job
                .outputs
                .iter()
                .map(|(k, t)| {
                    let value = t.render(cx).unwrap_or_default();
                    (k.clone(), this.shared.masker.mask(&value).into_owned())
                })
                .collect()
        })
    }
}

/// An `image:` rendered; an empty result is an error, not Docker's puzzle.
fn render_image(template: &Template, cx: &Context<'_>, field: &str) -> Result<String, String> {
    let image = template
        .render(cx)
        .map_err(|e| format!("cannot evaluate `{field}`: {e}"))?;
    let image = image.trim();
    if image.is_empty() {
        return Err(format!("`{field}` evaluated to an empty string"));
    }
    Ok(image.to_owned())
}

/// Evaluates an `if:`; an evaluation error is reported, never ignored.
pub(crate) fn eval_condition(condition: &Expr, cx: &Context<'_>) -> Result<bool, String> {
    condition
        .eval_bool(cx)
        .map_err(|e| format!("cannot evaluate `if: {}`: {e}", condition.text.trim()))
}

pub(crate) async fn sleep_until(deadline: Option<Deadline>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
