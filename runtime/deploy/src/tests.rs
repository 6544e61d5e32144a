//! The controller's invariants against strategies that try to break them.
//! Instances are loopback listeners handed out by a platform stub (no
//! processes: what is tested is what the controller allows); the traffic
//! side is the real in-process router.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::contract::{Decision, Metadata, NextStep, RolloutState, ScaleTo};
use crate::controller::{Controller, Outcome, Tuning};
use crate::journal::Journal;
use crate::platform::{Instance, InstanceHandle, InstanceSpec, Platform, Strays};
use crate::proxy::Router;
use crate::spec::{Readiness, RolloutSettings, RunSpec, ServiceSpec};
use crate::{BoxFuture, Result, Strategy};

#[derive(Default)]
struct Stub {
    listeners: Mutex<Vec<std::net::TcpListener>>,
    started: Mutex<Vec<String>>,
    stopped: Mutex<Vec<String>>,
}

impl Platform for Stub {
    fn start<'a>(&'a self, spec: &'a InstanceSpec) -> BoxFuture<'a, Result<Instance>> {
        Box::pin(async move {
            // A bound socket accepts connections through its backlog: enough
            // for the readiness probe.
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            self.listeners.lock().unwrap().push(l);
            self.started
                .lock()
                .unwrap()
                .push(spec.service.version.clone());
            Ok(Instance {
                name: spec.name.clone(),
                version: spec.service.version.clone(),
                host: "127.0.0.1".into(),
                port,
                handle: InstanceHandle::Container {
                    id: spec.name.clone(),
                },
            })
        })
    }

    fn stop<'a>(&'a self, handle: &'a InstanceHandle, _: Duration) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let InstanceHandle::Container { id } = handle else {
                unreachable!()
            };
            self.stopped.lock().unwrap().push(id.clone());
            Ok(())
        })
    }

    fn alive<'a>(&'a self, handle: &'a InstanceHandle) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let InstanceHandle::Container { id } = handle else {
                return false;
            };
            !self.stopped.lock().unwrap().contains(id)
        })
    }

    fn stop_strays<'a>(&'a self, _: &'a Strays<'a>) -> BoxFuture<'a, Result<usize>> {
        // Every instance it starts is recorded: there are never strays.
        Box::pin(async { Ok(0) })
    }
}

/// Returns its decisions in order, whatever it observes.
struct Scripted(Vec<Decision>);

impl Strategy for Scripted {
    fn metadata(&self) -> Metadata {
        Metadata {
            name: "scripted".into(),
            version: "0".into(),
            description: String::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            capabilities: Vec::new(),
        }
    }

    fn next(&mut self, _: &RolloutState) -> Result<NextStep, String> {
        if self.0.is_empty() {
            return Err("out of decisions".into());
        }
        Ok(NextStep {
            decision: self.0.remove(0),
            memo: String::new(),
        })
    }
}

fn spec(version: &str, replicas: u32) -> ServiceSpec {
    ServiceSpec {
        service: "web".into(),
        version: version.into(),
        run: RunSpec::Command("stub".into()),
        port: None,
        replicas,
        env: Vec::new(),
        workdir: std::env::temp_dir(),
        readiness: Readiness {
            path: None,
            timeout: Duration::from_secs(2),
        },
        health_params: Vec::new(),
    }
}

fn settings() -> RolloutSettings {
    RolloutSettings {
        run: 1,
        strategy: "scripted".into(),
        strategy_params: Vec::new(),
        health: None,
        health_digest: None,
        manual_approval: false,
        approval_timeout: Duration::from_millis(200),
        listen: "127.0.0.1:0".parse().unwrap(),
        sticky: None,
    }
}

fn scale(version: &str, replicas: u32) -> Decision {
    Decision::Scale(ScaleTo {
        version: version.into(),
        replicas,
    })
}

struct World {
    _dir: tempfile::TempDir,
    journal: Journal,
    stub: Arc<Stub>,
    router: Arc<Router>,
}

impl World {
    /// v1 serving with `replicas` instances (deployed by a first rollout).
    async fn with_v1(replicas: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let w = Self {
            _dir: dir,
            journal,
            stub: Arc::default(),
            router: Arc::new(Router::new()),
        };
        let first = w
            .run(
                spec("v1", replicas),
                vec![
                    scale("v1", replicas),
                    Decision::CheckHealth,
                    Decision::Promote,
                ],
            )
            .await;
        assert_eq!(first, Outcome::Promoted);
        w
    }

    async fn run(&self, spec: ServiceSpec, decisions: Vec<Decision>) -> Outcome {
        self.run_with(spec, settings(), decisions).await
    }

    async fn run_with(
        &self,
        spec: ServiceSpec,
        settings: RolloutSettings,
        decisions: Vec<Decision>,
    ) -> Outcome {
        self.run_strategy(spec, settings, &mut Scripted(decisions))
            .await
    }

    async fn run_strategy(
        &self,
        spec: ServiceSpec,
        settings: RolloutSettings,
        strategy: &mut dyn Strategy,
    ) -> Outcome {
        let c = Controller {
            journal: &self.journal,
            platform: self.stub.clone(),
            traffic: Arc::new(self.router.clone()),
            health: None,
            log: Arc::new(|_| {}),
            stop: CancellationToken::new(),
            tuning: Tuning {
                drain: Duration::from_millis(50),
                ..Tuning::default()
            },
        };
        c.rollout(spec, settings, strategy).await.unwrap()
    }

    fn routed_versions(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .router
            .table()
            .backends
            .into_iter()
            .map(|b| b.version)
            .collect();
        v.dedup();
        v
    }
}

#[tokio::test]
async fn stable_capacity_cannot_drop_before_the_candidate_serves() {
    let w = World::with_v1(2).await;
    let out = w
        .run(spec("v2", 2), vec![scale("v2", 1), scale("v1", 1)])
        .await;
    assert_eq!(
        out,
        Outcome::RolledBack(
            "`scale v1 to 1` was refused: it would leave 1 serving instances, fewer than the 2 replicas of `v1`".into()
        )
    );
    assert_eq!(w.routed_versions(), ["v1"]);
    assert_eq!(
        w.router.table().backends.len(),
        2,
        "both v1 instances serve"
    );
}

#[tokio::test]
async fn an_unchecked_candidate_gets_no_traffic_and_cannot_be_promoted() {
    let w = World::with_v1(1).await;
    let out = w
        .run(
            spec("v2", 1),
            vec![scale("v2", 1), Decision::SetWeight(100), Decision::Promote],
        )
        .await;
    assert_eq!(
        out,
        Outcome::RolledBack("`promote` was refused: 0 of 1 candidate replicas are healthy".into())
    );
    let events = w.journal.events(2).unwrap();
    // The table after `set-weight 100` held no v2 backend.
    let tables: Vec<_> = events.iter().filter_map(|(_, d)| d.get("table")).collect();
    assert!(tables.iter().all(|t| {
        t["backends"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["version"] == "v1")
    }));
    assert_eq!(w.routed_versions(), ["v1"]);
}

#[tokio::test]
async fn rollback_restores_retired_stable_instances_before_removing_the_candidate() {
    let w = World::with_v1(1).await;
    let out = w
        .run(
            spec("v2", 1),
            vec![
                scale("v2", 1),
                Decision::CheckHealth,
                Decision::SetWeight(100),
                scale("v1", 0),
                Decision::Rollback("bad".into()),
            ],
        )
        .await;
    assert_eq!(out, Outcome::RolledBack("bad".into()));
    // v1 started by the first rollout, v2, then v1 again to restore capacity.
    assert_eq!(*w.stub.started.lock().unwrap(), ["v1", "v2", "v1"]);
    assert_eq!(w.routed_versions(), ["v1"]);
    assert_eq!(
        w.journal
            .live_instances("web")
            .unwrap()
            .iter()
            .map(|i| i.version.as_str())
            .collect::<Vec<_>>(),
        ["v1"]
    );
    assert_eq!(
        w.journal.service("web").unwrap().stable.as_deref(),
        Some("v1")
    );
}

#[tokio::test]
async fn strategy_mistakes_roll_back_with_the_reason() {
    let w = World::with_v1(1).await;
    assert_eq!(
        w.run(spec("v2", 1), vec![Decision::Done]).await,
        Outcome::RolledBack(
            "`done` was refused: the strategy finished without promoting or rolling back".into()
        )
    );
    assert_eq!(
        w.run(spec("v2", 1), vec![]).await,
        Outcome::RolledBack("the strategy failed: out of decisions".into())
    );
    assert_eq!(
        w.run(spec("v2", 1), vec![scale("v9", 1)]).await,
        Outcome::RolledBack(
            "`scale v9 to 1` was refused: `v9` is neither the stable nor the candidate version"
                .into()
        )
    );
    assert_eq!(
        w.run(spec("v2", 1), vec![scale("v2", 5)]).await,
        Outcome::RolledBack(
            "`scale v2 to 5` was refused: the candidate may run at most its 1 replicas, not 5"
                .into()
        )
    );
    assert_eq!(
        w.run(spec("v2", 1), vec![Decision::SetWeight(101)]).await,
        Outcome::RolledBack(
            "`set-weight 101%` was refused: a weight is a percentage (0–100), not 101".into()
        )
    );
    let history = w.journal.history("web").unwrap();
    assert_eq!(
        history.iter().filter(|r| r.status == "rolled-back").count(),
        5
    );
}

#[tokio::test]
async fn an_unanswered_gate_times_out_as_rejected() {
    let w = World::with_v1(1).await;
    let mut s = settings();
    s.manual_approval = true;
    let out = w
        .run_with(
            spec("v2", 1),
            s,
            vec![
                scale("v2", 1),
                Decision::CheckHealth,
                Decision::SetWeight(100),
                Decision::Promote,
            ],
        )
        .await;
    assert_eq!(
        out,
        Outcome::RolledBack("approval `promote` was rejected".into())
    );
    let gates = w.journal.approvals(2).unwrap();
    assert_eq!(gates[0].name, "promote");
    assert_eq!(gates[0].answer, crate::contract::ApprovalAnswer::Rejected);
    assert_eq!(w.routed_versions(), ["v1"]);
}

#[tokio::test]
async fn a_second_rollout_of_the_same_service_is_refused_while_one_runs() {
    let w = World::with_v1(1).await;
    let _held = crate::journal::ServiceLock::acquire(&w.journal, "web").unwrap();
    let c = Controller {
        journal: &w.journal,
        platform: w.stub.clone(),
        traffic: Arc::new(w.router.clone()),
        health: None,
        log: Arc::new(|_| {}),
        stop: CancellationToken::new(),
        tuning: Tuning::default(),
    };
    let err = c
        .rollout(spec("v2", 1), settings(), &mut Scripted(vec![]))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("service `web` is being deployed by another kiln process"),
        "{err}"
    );
}

/// Scripted, keeping the `elapsed-ms` of every state it is shown.
struct Timed(Scripted, Vec<u64>);

impl Strategy for Timed {
    fn metadata(&self) -> Metadata {
        self.0.metadata()
    }

    fn next(&mut self, state: &RolloutState) -> Result<NextStep, String> {
        self.1.push(state.elapsed_ms);
        self.0.next(state)
    }
}

#[tokio::test]
async fn elapsed_ms_includes_carrying_out_the_previous_decision() {
    // As in a dry run: after `wait 300ms` the strategy sees ≥ 300 ms.
    let w = World::with_v1(1).await;
    let mut timed = Timed(
        Scripted(vec![Decision::Wait(300), Decision::Rollback("seen".into())]),
        Vec::new(),
    );
    let outcome = w.run_strategy(spec("v2", 1), settings(), &mut timed).await;
    assert!(matches!(outcome, Outcome::RolledBack(_)), "{outcome:?}");
    assert!(timed.1[0] < 300, "{:?}", timed.1);
    assert!(timed.1[1] >= 300, "{:?}", timed.1);
}

/// Healthy, keeping the time each check had left.
struct Patient(Mutex<Vec<Duration>>);

impl crate::HealthCheck for Patient {
    fn metadata(&self) -> Metadata {
        Scripted(Vec::new()).metadata()
    }

    fn check<'a>(
        &'a self,
        _: &'a crate::contract::Target,
        _: &'a [crate::contract::KeyValue],
        deadline: std::time::Instant,
    ) -> BoxFuture<'a, crate::contract::HealthReport> {
        self.0
            .lock()
            .unwrap()
            .push(deadline.saturating_duration_since(std::time::Instant::now()));
        Box::pin(async {
            crate::contract::HealthReport {
                status: crate::contract::HealthStatus::Healthy,
                detail: "ok".into(),
                metrics: Vec::new(),
            }
        })
    }
}

#[tokio::test]
async fn a_check_is_given_the_controllers_timeout_as_its_deadline() {
    // So a check that hangs is stopped by its host, which then reports
    // what it wrote, rather than dropped mid-call.
    let w = World::with_v1(1).await;
    let patient = Arc::new(Patient(Mutex::new(Vec::new())));
    let c = Controller {
        journal: &w.journal,
        platform: w.stub.clone(),
        traffic: Arc::new(w.router.clone()),
        health: Some(patient.clone()),
        log: Arc::new(|_| {}),
        stop: CancellationToken::new(),
        tuning: Tuning {
            drain: Duration::from_millis(50),
            health_timeout: Duration::from_secs(3),
            ..Tuning::default()
        },
    };
    let mut strategy = Scripted(vec![
        scale("v2", 1),
        Decision::CheckHealth,
        Decision::Rollback("seen".into()),
    ]);
    c.rollout(spec("v2", 1), settings(), &mut strategy)
        .await
        .unwrap();
    let left = patient.0.lock().unwrap().clone();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0] > Duration::from_millis(2500) && left[0] <= Duration::from_secs(3),
        "{left:?}"
    );
}
