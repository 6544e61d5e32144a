//! `deploy:` jobs: fields, defaults and every rejected input.

use std::time::Duration;

use super::*;
use crate::{DeployRun, DeployTarget, StepAction, Sticky};

#[test]
fn a_deploy_job_is_one_step_carrying_the_rollout() {
    let p = plan(
        "jobs:
  ship:
    deploy:
      service: web
      command: ./server --port $PORT
      version: v2
      replicas: 3
      env: { GREETING: hi }
      readiness: { path: /ready, timeout: 5s }
      strategy: { uses: kiln/canary@1, with: { weights: '10,50,100' } }
      health: kiln/http-health@1
      approval: manual
      approval-timeout: 10m
      proxy: { listen: '127.0.0.1:9090', sticky: 'header:X-User' }
",
    );
    let step = &p.jobs[0].steps[0];
    assert_eq!(step.name, "deploy web");
    let StepAction::Deploy(d) = &step.action else {
        panic!("{:?}", step.action)
    };
    assert_eq!(d.target, DeployTarget::Process);
    assert_eq!(d.service, "web");
    let DeployRun::Command(c) = &d.run else {
        panic!()
    };
    assert_eq!(c.text, "./server --port $PORT");
    assert_eq!(d.version.as_ref().unwrap().text, "v2");
    assert_eq!(d.replicas, 3);
    assert_eq!(d.env[0].0, "GREETING");
    assert_eq!(d.readiness.path.as_deref(), Some("/ready"));
    assert_eq!(d.readiness.timeout, Duration::from_secs(5));
    assert_eq!(d.strategy.uses, "kiln/canary@1");
    assert_eq!(d.strategy.with[0].0, "weights");
    assert_eq!(d.health.as_ref().unwrap().uses, "kiln/http-health@1");
    assert!(d.manual_approval);
    assert_eq!(d.approval_timeout, Duration::from_secs(600));
    assert_eq!(d.proxy.listen.to_string(), "127.0.0.1:9090");
    assert_eq!(d.proxy.sticky, Some(Sticky::Header("x-user".into())));
}

#[test]
fn defaults_are_one_rolling_replica_behind_port_8080() {
    let p = plan("jobs:\n  ship:\n    deploy: { target: docker, service: web, image: app:2 }\n");
    let StepAction::Deploy(d) = &p.jobs[0].steps[0].action else {
        panic!()
    };
    assert_eq!(d.target, DeployTarget::Docker);
    assert_eq!(d.replicas, 1);
    assert_eq!(d.strategy.uses, "kiln/rolling@1");
    assert!(d.health.is_none());
    assert!(!d.manual_approval);
    assert_eq!(d.proxy.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(d.readiness.path, None);
}

#[test]
fn every_mistake_is_reported_with_its_position() {
    assert_eq!(
        problems(
            "jobs:
  ship:
    deploy:
      target: dokcer
      service: Web
      command: ./x
      replicas: 0
      stratgy: kiln/rolling@1
      approval: manaul
      readiness: { path: ready }
      proxy: { listen: '0.0.0.0:80', sticky: sometimes }
"
        ),
        [
            "4:15 invalid-value unknown deployment target `dokcer`",
            "5:16 invalid-name invalid service name `Web`",
            "6:16 missing-field a `command` deployment needs a `version`",
            "7:17 out-of-range `deploy.replicas` must be between 1 and 64, found 0",
            "8:7 unknown-field unknown field `stratgy` in `deploy`",
            "9:17 invalid-value unknown approval `manaul`",
            "10:26 invalid-value readiness path `ready` does not start with `/`",
            "11:24 invalid-value the proxy listens on loopback only, not `0.0.0.0`",
            "11:46 invalid-value unknown sticky-session mode `sometimes`",
        ]
    );
}

#[test]
fn suggestions_for_misspelled_fields_and_values() {
    let err = try_load(
        "jobs:\n  ship:\n    deploy: { service: web, image: a:1, target: dokcer, helth: x }\n",
    )
    .unwrap_err();
    let helps: Vec<_> = err.diagnostics.iter().map(|d| d.help.clone()).collect();
    assert!(
        helps.contains(&Some("did you mean `docker`?".into())),
        "{helps:?}"
    );
    assert!(
        helps.contains(&Some("did you mean `health`?".into())),
        "{helps:?}"
    );
}

#[test]
fn what_runs_must_match_the_target() {
    assert_eq!(
        problems("jobs:\n  a:\n    deploy: { service: web }\n"),
        ["3:5 missing-field `deploy` has neither `command` nor `image`",]
    );
    assert_eq!(
        problems("jobs:\n  a:\n    deploy: { service: web, image: app:1 }\n"),
        ["3:36 invalid-value `target: process` runs a `command`, not an `image`"]
    );
    assert_eq!(
        problems(
            "jobs:\n  a:\n    deploy: { target: docker, service: web, command: x, version: '1' }\n"
        ),
        ["3:23 invalid-value `target: docker` runs an `image`, not a `command`"]
    );
    assert_eq!(
        problems("jobs:\n  a:\n    deploy: { command: x, version: '1' }\n"),
        ["3:5 missing-field `deploy` of job `a` has no `service`"]
    );
    assert_eq!(
        problems(
            "jobs:\n  a:\n    deploy: { service: w, command: x, version: '1' }\n    steps: [{run: y}]\n"
        ),
        ["4:12 conflicting-fields job `a` has both `deploy` and `steps`"]
    );
}

#[test]
fn deploy_strings_are_checked_expressions() {
    assert_eq!(
        problems(
            "jobs:\n  a:\n    deploy: { service: w, command: x, version: '${{ needs.b.outputs.v }}' }\n"
        ),
        ["3:53 unknown-need `needs.b` refers to a job that `a` does not need"]
    );
}
