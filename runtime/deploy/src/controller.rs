//! The rollout controller: asks the strategy for the next decision, carries
//! it out, records both, and repeats until the rollout is promoted or
//! rolled back.
//!
//! The strategy only decides; every effect is performed here, and these
//! invariants hold whatever the strategy asks for (a decision that would
//! break one is refused, and a refusal rolls the rollout back):
//!
//! - before promotion, serving capacity (stable instances plus healthy
//!   candidate instances in the table) never drops below the stable
//!   version's replica count;
//! - an instance that has not passed its latest health check is never in
//!   the routing table;
//! - promotion needs every candidate replica healthy and no rejected gate;
//! - a rollback restores stable to full capacity and full weight *before*
//!   any candidate instance is removed;
//! - a `promoting` record is written before promotion starts, so a resume
//!   finishes a promotion only if it had been decided.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::contract::{
    ApprovalAnswer, Decision, HealthReport, HealthStatus, KeyValue, RolloutState, Target,
    TrafficStats, VersionReplicas,
};
use crate::error::{DeployError, Result};
use crate::journal::{Journal, ServiceLock};
use crate::platform::{self, Instance, InstanceSpec, Platform};
use crate::plugin::{HealthCheck, Strategy};
use crate::proxy::{Backend, RoutingTable, Traffic};
use crate::spec::{RolloutSettings, ServiceSpec};

/// Where progress lines go (the CLI streams them as the job's output).
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// How a rollout ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The candidate serves at full weight; the old version is gone.
    Promoted,
    /// Stable serves at full weight; the candidate is gone.
    RolledBack(String),
}

/// Timings the controller uses besides the strategy's.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// SIGTERM → SIGKILL when stopping an instance.
    pub grace: Duration,
    /// Longest wait for in-flight requests to an instance leaving the table.
    pub drain: Duration,
    /// How often a pending approval gate is re-read.
    pub approval_poll: Duration,
    /// Longest health check of one instance (then it is `unknown`).
    pub health_timeout: Duration,
    /// Most decisions one rollout may take (a runaway strategy is rolled back).
    pub max_decisions: u32,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(5),
            drain: Duration::from_secs(10),
            approval_poll: Duration::from_millis(100),
            health_timeout: Duration::from_secs(10),
            max_decisions: 100_000,
        }
    }
}

/// Everything a rollout acts on.
pub struct Controller<'a> {
    /// The durable record.
    pub journal: &'a Journal,
    /// Where instances run.
    pub platform: Arc<dyn Platform>,
    /// The service's proxy.
    pub traffic: Arc<dyn Traffic>,
    /// The health check (`None`: the readiness probe is the check).
    pub health: Option<Arc<dyn HealthCheck>>,
    /// Progress lines.
    pub log: Log,
    /// Fires when the run is cancelled: the rollout rolls back.
    pub stop: CancellationToken,
    /// Timings.
    pub tuning: Tuning,
}

/// An instance the rollout knows of.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub instance: Instance,
    /// Passed its latest health check (stable instances count as healthy).
    pub healthy: bool,
    pub report: Option<HealthReport>,
}

/// One rollout in progress.
pub(crate) struct Rollout<'c, 'a> {
    pub c: &'c Controller<'a>,
    pub id: i64,
    pub spec: ServiceSpec,
    pub settings: RolloutSettings,
    pub stable: Option<String>,
    pub stable_spec: Option<ServiceSpec>,
    pub members: Vec<Member>,
    pub weight: u8,
    memo: String,
    last: Instant,
    waiting: bool,
}

/// What carrying out a decision led to.
enum Flow {
    Continue,
    Finished(Outcome),
}

impl<'a> Controller<'a> {
    /// Rolls `spec` out with `strategy`, to the end.
    pub async fn rollout(
        &self,
        spec: ServiceSpec,
        settings: RolloutSettings,
        strategy: &mut dyn Strategy,
    ) -> Result<Outcome> {
        let _lock = ServiceLock::acquire(self.journal, &spec.service)?;
        if let Some(earlier) = self.journal.unfinished(Some(&spec.service))?.first() {
            return Err(DeployError::Invalid(format!(
                "rollout {} of `{}` (version `{}`) did not finish; run `kiln deploy resume {}` first",
                earlier.id, spec.service, earlier.candidate, spec.service
            )));
        }
        let service = self.journal.service(&spec.service)?;
        if service.stable.as_deref() == Some(spec.version.as_str()) {
            (self.log)(&format!(
                "version `{}` of `{}` is already serving; nothing to roll out",
                spec.version, spec.service
            ));
            return Ok(Outcome::Promoted);
        }
        let id = self
            .journal
            .begin(&spec, &settings, service.stable.as_deref())?;
        let mut rollout = Rollout::new(
            self,
            id,
            spec,
            settings,
            service.stable,
            service.stable_spec,
        )
        .await?;
        (self.log)(&format!(
            "rollout {id}: `{}` {} → {} with {} ({} replicas)",
            rollout.spec.service,
            rollout.stable.as_deref().unwrap_or("nothing"),
            rollout.spec.version,
            rollout.settings.strategy,
            rollout.spec.replicas
        ));
        rollout.push_table().await?;
        rollout.drive(strategy).await
    }
}

/// `[a-z0-9.-]` only, for instance names.
fn name_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

impl<'c, 'a> Rollout<'c, 'a> {
    pub(crate) async fn new(
        c: &'c Controller<'a>,
        id: i64,
        spec: ServiceSpec,
        settings: RolloutSettings,
        stable: Option<String>,
        stable_spec: Option<ServiceSpec>,
    ) -> Result<Self> {
        let mut members = Vec::new();
        for instance in c.journal.live_instances(&spec.service)? {
            if c.platform.alive(&instance.handle).await {
                let healthy = stable.as_deref() == Some(instance.version.as_str());
                members.push(Member {
                    instance,
                    healthy,
                    report: None,
                });
            } else {
                // It died while nobody watched: what is left of it goes (a
                // container stays until removed) and the record says so.
                c.platform.stop(&instance.handle, Duration::ZERO).await?;
                c.journal.instance_stopped(&instance.name)?;
            }
        }
        Ok(Self {
            c,
            id,
            spec,
            settings,
            stable,
            stable_spec,
            members,
            weight: 0,
            memo: String::new(),
            last: Instant::now(),
            waiting: false,
        })
    }

    fn log(&self, line: &str) {
        (self.c.log)(line);
    }

    fn record(&self, kind: &str, detail: serde_json::Value) -> Result<()> {
        self.c.journal.event(self.id, kind, &detail)
    }

    fn of(&self, version: &str) -> impl DoubleEndedIterator<Item = &Member> {
        self.members
            .iter()
            .filter(move |m| m.instance.version == version)
    }

    fn candidate(&self) -> impl DoubleEndedIterator<Item = &Member> {
        self.of(&self.spec.version)
    }

    fn is_stable(&self, version: &str) -> bool {
        self.stable.as_deref() == Some(version)
    }

    /// The table for what is known now: stable instances, and candidate
    /// instances that passed their latest health check.
    pub(crate) fn table(&self) -> RoutingTable {
        let backends = self
            .members
            .iter()
            .filter(|m| {
                m.healthy
                    && (self.is_stable(&m.instance.version)
                        || m.instance.version == self.spec.version)
            })
            .filter_map(|m| {
                Some(Backend {
                    instance: m.instance.name.clone(),
                    version: m.instance.version.clone(),
                    addr: format!("{}:{}", m.instance.host, m.instance.port)
                        .parse()
                        .ok()?,
                })
            })
            .collect();
        RoutingTable {
            stable: self.stable.clone(),
            candidate: Some(self.spec.version.clone()),
            weight: if self.stable.is_none() {
                100
            } else {
                self.weight
            },
            backends,
            sticky: self.settings.sticky.clone(),
        }
    }

    pub(crate) async fn push_table(&self) -> Result<()> {
        let table = self.table();
        self.record("effect", json!({ "table": &table }))?;
        self.c.traffic.set_table(table).await
    }

    async fn state(&self) -> Result<RolloutState> {
        let mut versions = Vec::new();
        for version in self
            .stable
            .iter()
            .chain(std::iter::once(&self.spec.version))
        {
            versions.push(VersionReplicas {
                version: version.clone(),
                replicas: self.of(version).count() as u32,
                healthy: self.of(version).filter(|m| m.healthy).count() as u32,
            });
        }
        let stats = self.c.traffic.stats().await?;
        let traffic = versions
            .iter()
            .map(|v| {
                stats
                    .iter()
                    .find(|s| s.version == v.version)
                    .cloned()
                    .unwrap_or(TrafficStats {
                        version: v.version.clone(),
                        requests: 0,
                        errors: 0,
                        p50_latency_ms: 0.0,
                        p99_latency_ms: 0.0,
                    })
            })
            .collect();
        Ok(RolloutState {
            service: self.spec.service.clone(),
            stable: self.stable.clone(),
            candidate: self.spec.version.clone(),
            replicas: self.spec.replicas,
            versions,
            candidate_weight: self.weight,
            health: self.candidate().filter_map(|m| m.report.clone()).collect(),
            traffic,
            approvals: self.c.journal.approvals(self.id)?,
            elapsed_ms: self.last.elapsed().as_millis() as u64,
            params: self.settings.strategy_params.clone(),
            memo: self.memo.clone(),
        })
    }

    async fn drive(&mut self, strategy: &mut dyn Strategy) -> Result<Outcome> {
        for _ in 0..self.c.tuning.max_decisions {
            if self.c.stop.is_cancelled() {
                return self.rollback("the run was cancelled").await;
            }
            let state = self.state().await?;
            self.record("observation", json!(&state))?;
            let step = match strategy.decide(&state).await {
                Ok(step) => step,
                Err(message) => {
                    self.record("refused", json!({ "strategy-error": &message }))?;
                    return self
                        .rollback(&format!("the strategy failed: {message}"))
                        .await;
                }
            };
            self.record("decision", json!(&step))?;
            self.memo = step.memo;
            // A strategy polling with short waits would flood the log:
            // only the first of a run of waits is shown (all are recorded).
            let repeated_wait = matches!(step.decision, Decision::Wait(_)) && self.waiting;
            self.waiting = matches!(step.decision, Decision::Wait(_));
            if !repeated_wait {
                self.log(&format!("→ {}", step.decision));
            }
            // `elapsed-ms` counts from here: carrying the decision out (a
            // whole `wait`) is part of the time since it, as in a dry run.
            self.last = Instant::now();
            let flow = self.perform(step.decision.clone()).await;
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Finished(outcome)) => return Ok(outcome),
                Err(refusal) => {
                    self.record(
                        "refused",
                        json!({ "decision": &step.decision, "why": &refusal }),
                    )?;
                    self.log(&format!("  refused: {refusal}"));
                    return self
                        .rollback(&format!("`{}` was refused: {refusal}", step.decision))
                        .await;
                }
            }
        }
        self.rollback(&format!(
            "the strategy made {} decisions without finishing",
            self.c.tuning.max_decisions
        ))
        .await
    }

    /// Carries out one decision; `Err` is a refusal (or an effect that
    /// failed), which rolls back.
    async fn perform(&mut self, decision: Decision) -> Result<Flow, String> {
        let fail = |e: DeployError| e.to_string();
        match decision {
            Decision::Scale(to) => self
                .scale(&to.version, to.replicas)
                .await
                .map(|()| Flow::Continue),
            Decision::SetWeight(w) => {
                if w > 100 {
                    return Err(format!("a weight is a percentage (0–100), not {w}"));
                }
                self.weight = w;
                self.push_table().await.map_err(fail)?;
                self.c.traffic.reset().await.map_err(fail)?;
                Ok(Flow::Continue)
            }
            Decision::CheckHealth => {
                self.check_health().await.map_err(fail)?;
                Ok(Flow::Continue)
            }
            Decision::Wait(ms) => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(ms)) => Ok(Flow::Continue),
                    _ = self.c.stop.cancelled() => Ok(Flow::Continue),
                }
            }
            Decision::AwaitApproval(gate) => {
                self.await_gate(&gate).await.map_err(fail)?;
                Ok(Flow::Continue)
            }
            Decision::Promote => self.promote().await,
            Decision::Rollback(reason) => {
                Ok(Flow::Finished(self.rollback(&reason).await.map_err(fail)?))
            }
            Decision::Done => Err("the strategy finished without promoting or rolling back".into()),
        }
    }

    async fn scale(&mut self, version: &str, n: u32) -> Result<(), String> {
        let spec = if version == self.spec.version {
            if n > self.spec.replicas {
                return Err(format!(
                    "the candidate may run at most its {} replicas, not {n}",
                    self.spec.replicas
                ));
            }
            self.spec.clone()
        } else if self.is_stable(version) {
            let stable_spec = self
                .stable_spec
                .clone()
                .ok_or("no record of the stable version's spec")?;
            let healthy = self.candidate().filter(|m| m.healthy).count() as u32;
            // Healthy candidates serve only once they get a share.
            let capacity = n + if self.weight > 0 { healthy } else { 0 };
            if capacity < stable_spec.replicas {
                return Err(format!(
                    "it would leave {capacity} serving instances, fewer than the {} replicas of `{version}`",
                    stable_spec.replicas
                ));
            }
            stable_spec
        } else {
            return Err(format!(
                "`{version}` is neither the stable nor the candidate version"
            ));
        };
        let have = self.of(version).count() as u32;
        if n > have {
            for _ in have..n {
                self.start(&spec).await.map_err(|e| e.to_string())?;
            }
        } else if n < have {
            let leaving: Vec<String> = self
                .of(version)
                .rev()
                .take((have - n) as usize)
                .map(|m| m.instance.name.clone())
                .collect();
            self.remove(&leaving).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Starts one instance of `spec` and waits for it to be ready. A new
    /// candidate instance joins the table only after a health check.
    pub(crate) async fn start(&mut self, spec: &ServiceSpec) -> Result<()> {
        let journal = self.c.journal;
        let index = journal.instances_started_by(self.id)? + 1;
        let name = format!(
            "{}-{}-r{}-{index}",
            spec.service,
            name_part(&spec.version),
            self.id
        );
        journal.instance_starting(self.id, &spec.service, &spec.version, &name)?;
        let request = InstanceSpec {
            name: name.clone(),
            rollout: self.id,
            service: spec.clone(),
            log: journal
                .deploy_dir()
                .join("logs")
                .join(format!("{name}.log")),
        };
        let instance = match self.c.platform.start(&request).await {
            Ok(i) => i,
            Err(e) => {
                journal.instance_stopped(&name)?;
                return Err(e);
            }
        };
        journal.instance_started(&instance)?;
        let ready = platform::wait_ready(
            &instance.host,
            instance.port,
            &spec.readiness,
            self.c.platform.as_ref(),
            &instance.handle,
        )
        .await;
        match ready {
            Ok(detail) => {
                self.log(&format!(
                    "  {name} up on {}:{} ({detail})",
                    instance.host, instance.port
                ));
                self.record("effect", json!({ "started": &instance }))?;
                let healthy = self.is_stable(&instance.version);
                self.members.push(Member {
                    instance,
                    healthy,
                    report: None,
                });
                Ok(())
            }
            Err(why) => {
                self.c
                    .platform
                    .stop(&instance.handle, self.c.tuning.grace)
                    .await?;
                journal.instance_stopped(&name)?;
                Err(DeployError::Start {
                    instance: name,
                    message: why,
                })
            }
        }
    }

    /// Takes instances out of the table, lets their requests finish, stops
    /// them.
    pub(crate) async fn remove(&mut self, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let leaving: Vec<Member> = self
            .members
            .iter()
            .filter(|m| names.contains(&m.instance.name))
            .cloned()
            .collect();
        self.members.retain(|m| !names.contains(&m.instance.name));
        self.push_table().await?;
        let deadline = Instant::now() + self.c.tuning.drain;
        while self.c.traffic.in_flight(names.to_vec()).await? > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for m in leaving {
            self.c
                .platform
                .stop(&m.instance.handle, self.c.tuning.grace)
                .await?;
            self.c.journal.instance_stopped(&m.instance.name)?;
            self.log(&format!("  {} stopped", m.instance.name));
            self.record("effect", json!({ "stopped": &m.instance.name }))?;
        }
        Ok(())
    }

    pub(crate) async fn check_health(&mut self) -> Result<()> {
        let params = self.spec.health_params.clone();
        for i in 0..self.members.len() {
            if self.members[i].instance.version != self.spec.version {
                continue;
            }
            let inst = self.members[i].instance.clone();
            let report = self.check_one(&inst, &params).await;
            self.log(&format!(
                "  {}: {} ({})",
                inst.name,
                match report.status {
                    HealthStatus::Healthy => "healthy",
                    HealthStatus::Unhealthy => "unhealthy",
                    HealthStatus::Unknown => "unknown",
                },
                report.detail
            ));
            self.record(
                "observation",
                json!({ "instance": &inst.name, "health": &report }),
            )?;
            self.members[i].healthy = report.status == HealthStatus::Healthy;
            self.members[i].report = Some(report);
        }
        self.push_table().await
    }

    async fn check_one(&self, inst: &Instance, params: &[KeyValue]) -> HealthReport {
        if !self.c.platform.alive(&inst.handle).await {
            return HealthReport {
                status: HealthStatus::Unhealthy,
                detail: "the instance is not running".into(),
                metrics: Vec::new(),
            };
        }
        let timeout = self.c.tuning.health_timeout;
        let Some(check) = &self.c.health else {
            let probe = platform::probe(
                &inst.host,
                inst.port,
                self.spec.readiness.path.as_deref(),
                timeout,
            )
            .await;
            return match probe {
                Ok(detail) => HealthReport {
                    status: HealthStatus::Healthy,
                    detail,
                    metrics: Vec::new(),
                },
                Err(detail) => HealthReport {
                    status: HealthStatus::Unhealthy,
                    detail,
                    metrics: Vec::new(),
                },
            };
        };
        let target = Target {
            host: inst.host.clone(),
            port: inst.port,
            version: inst.version.clone(),
            instance: inst.name.clone(),
        };
        // The check itself stops at the deadline and says what it wrote;
        // the grace only bounds a check that fails to.
        let deadline = std::time::Instant::now() + timeout;
        let grace = Duration::from_secs(1);
        match tokio::time::timeout(timeout + grace, check.check(&target, params, deadline)).await {
            Ok(report) => report,
            Err(_) => HealthReport {
                status: HealthStatus::Unknown,
                detail: format!("the check took longer than {} ms", timeout.as_millis()),
                metrics: Vec::new(),
            },
        }
    }

    /// Opens gate `gate` and waits for its answer (a timeout rejects it).
    async fn await_gate(&mut self, gate: &str) -> Result<ApprovalAnswer> {
        let journal = self.c.journal;
        let known = journal.approvals(self.id)?;
        if let Some(a) = known
            .iter()
            .find(|a| a.name == gate && a.answer != ApprovalAnswer::Pending)
        {
            return Ok(a.answer);
        }
        journal.ask(self.id, self.settings.run, gate)?;
        self.record("effect", json!({ "await-approval": gate }))?;
        self.log(&format!(
            "  waiting for approval: `kiln approve {} {gate}` or `kiln reject {} {gate}`",
            self.settings.run, self.settings.run
        ));
        let deadline = Instant::now() + self.settings.approval_timeout;
        loop {
            let answer = journal
                .approvals(self.id)?
                .into_iter()
                .find(|a| a.name == gate)
                .map_or(ApprovalAnswer::Pending, |a| a.answer);
            if answer != ApprovalAnswer::Pending {
                self.log(&format!(
                    "  gate `{gate}`: {}",
                    if answer == ApprovalAnswer::Approved {
                        "approved"
                    } else {
                        "rejected"
                    }
                ));
                self.record("observation", json!({ "gate": gate, "answer": answer }))?;
                return Ok(answer);
            }
            if self.c.stop.is_cancelled() {
                journal.settle(
                    self.id,
                    gate,
                    ApprovalAnswer::Rejected,
                    "the run was cancelled",
                )?;
                continue;
            }
            if Instant::now() >= deadline {
                let note = format!(
                    "no answer within {} s",
                    self.settings.approval_timeout.as_secs()
                );
                self.log(&format!("  gate `{gate}`: {note}; rejected"));
                journal.settle(self.id, gate, ApprovalAnswer::Rejected, &note)?;
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.c.tuning.approval_poll) => {}
                _ = self.c.stop.cancelled() => {}
            }
        }
    }

    async fn promote(&mut self) -> Result<Flow, String> {
        let fail = |e: DeployError| e.to_string();
        if self.settings.manual_approval {
            match self.await_gate("promote").await.map_err(fail)? {
                ApprovalAnswer::Approved => {}
                _ => {
                    return Ok(Flow::Finished(
                        self.rollback("approval `promote` was rejected")
                            .await
                            .map_err(fail)?,
                    ));
                }
            }
        }
        let approvals = self.c.journal.approvals(self.id).map_err(fail)?;
        if let Some(gate) = approvals
            .iter()
            .find(|a| a.answer != ApprovalAnswer::Approved)
        {
            return Err(format!("approval `{}` is not approved", gate.name));
        }
        let healthy = self.candidate().filter(|m| m.healthy).count() as u32;
        if healthy < self.spec.replicas {
            return Err(format!(
                "{healthy} of {} candidate replicas are healthy",
                self.spec.replicas
            ));
        }
        self.c
            .journal
            .set_status(self.id, "promoting", None)
            .map_err(fail)?;
        self.finish_promotion().await.map_err(fail)?;
        Ok(Flow::Finished(Outcome::Promoted))
    }

    /// Candidate at full weight, old version removed, candidate recorded
    /// as stable. Also how a resume finishes a decided promotion.
    pub(crate) async fn finish_promotion(&mut self) -> Result<()> {
        let old: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.instance.version != self.spec.version)
            .map(|m| m.instance.name.clone())
            .collect();
        self.weight = 100;
        self.stable = None;
        self.remove(&old).await?;
        self.c
            .journal
            .set_stable(&self.spec.service, Some(&self.spec))?;
        self.stable = Some(self.spec.version.clone());
        self.c.journal.set_status(self.id, "promoted", None)?;
        self.log(&format!(
            "promoted `{}` to version `{}`",
            self.spec.service, self.spec.version
        ));
        Ok(())
    }

    /// Restores stable at full capacity and weight, then removes the
    /// candidate.
    pub(crate) async fn rollback(&mut self, reason: &str) -> Result<Outcome> {
        let journal = self.c.journal;
        journal.set_status(self.id, "rolling-back", Some(reason))?;
        self.log(&format!("rolling back: {reason}"));
        self.weight = 0;
        if let (Some(stable), Some(spec)) = (self.stable.clone(), self.stable_spec.clone()) {
            let have = self.of(&stable).count() as u32;
            for _ in have..spec.replicas {
                // One stable instance that fails to start must not stop
                // the rollback: what runs keeps serving.
                if let Err(e) = self.start(&spec).await {
                    self.log(&format!("  cannot restore a `{stable}` instance: {e}"));
                }
            }
        }
        // Stable alone at full weight first …
        let candidates: Vec<String> = self.candidate().map(|m| m.instance.name.clone()).collect();
        for m in self
            .members
            .iter_mut()
            .filter(|m| m.instance.version == self.spec.version)
        {
            m.healthy = false;
        }
        self.push_table().await?;
        // … then the candidate goes.
        self.remove(&candidates).await?;
        if self.stable.is_none() {
            journal.set_stable(&self.spec.service, None)?;
        }
        journal.set_status(self.id, "rolled-back", Some(reason))?;
        self.log(&format!(
            "rolled back `{}` to {}",
            self.spec.service,
            self.stable
                .as_deref()
                .map_or("nothing".to_owned(), |s| format!("version `{s}`"))
        ));
        Ok(Outcome::RolledBack(reason.to_owned()))
    }
}
