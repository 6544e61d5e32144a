//! `uses:` steps against a scripted [`ActionExecutor`]: what the engine
//! hands a plugin host, and what it makes of the answer.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Scripted, plan, run_id};
use crate::action::{ActionExecutor, ActionExit, ActionRequest};
use crate::event::{Event, StepResult, Stream};
use crate::executor::{BoxFuture, OutputSender, StepControl};
use crate::{RunOptions, RunResult};

/// `./ok.wasm` echoes its inputs as outputs and logs a secret; `./fail.wasm`
/// fails; `./hang.wasm` runs until stopped.
#[derive(Debug, Default)]
struct Plugins {
    requests: Mutex<Vec<ActionRequest>>,
}

impl ActionExecutor for Plugins {
    fn run_action(
        &self,
        request: ActionRequest,
        output: OutputSender,
        control: StepControl,
    ) -> BoxFuture<'static, ActionExit> {
        self.requests.lock().unwrap().push(request.clone());
        Box::pin(async move {
            match request.reference.as_str() {
                "./ok.wasm" => {
                    for (_, v) in &request.secrets {
                        let _ = output.send((Stream::Stderr, format!("secret {v}\n").into_bytes()));
                    }
                    ActionExit::Success(request.inputs.clone())
                }
                "./fail.wasm" => ActionExit::Failed("plugin `./fail.wasm` failed: nope".into()),
                _ => {
                    control.stop.cancelled().await;
                    ActionExit::Failed("interrupted".into())
                }
            }
        })
    }
}

async fn run(yaml: &str, actions: Option<Arc<Plugins>>) -> Vec<Event> {
    let mut options = RunOptions::new(run_id(), std::env::temp_dir());
    options.temp_root = Some(std::env::temp_dir());
    options.secrets.insert("TOKEN".into(), "t0ps3cret".into());
    options.secrets.insert("OTHER".into(), "0th3rsecret".into());
    options.actions = actions.map(|a| a as Arc<dyn ActionExecutor>);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let result = crate::run(
        plan(yaml),
        options,
        Arc::new(Scripted::default()),
        tx,
        CancellationToken::new(),
        CancellationToken::new(),
    )
    .await;
    let mut events = Vec::new();
    while let Ok(event) = rx.try_recv() {
        events.push(event);
    }
    assert!(matches!(result, RunResult::Success | RunResult::Failed));
    events
}

fn lines(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Output { line, .. } => Some(line.clone()),
            _ => None,
        })
        .collect()
}

fn step_results(events: &[Event]) -> Vec<StepResult> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StepFinished { result, .. } => Some(*result),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn without_a_plugin_host_a_uses_step_is_an_infrastructure_error() {
    let events = run("jobs:\n  a:\n    steps:\n      - uses: ./ok.wasm\n", None).await;
    assert_eq!(step_results(&events), [StepResult::InfrastructureError]);
    assert_eq!(
        lines(&events),
        ["kiln: `uses: ./ok.wasm`: this run has no plugin host, so plugin steps cannot run"]
    );
}

#[tokio::test]
async fn inputs_are_rendered_grants_filtered_and_outputs_flow_downstream() {
    let plugins = Arc::new(Plugins::default());
    let events = run(
        "env: { SUFFIX: '!', HIDDEN: h, WHO: there }\njobs:\n  a:\n    steps:\n      - id: p\n        uses: ./ok.wasm\n        \
         with: { said: \"hi ${{ env.WHO }}\" }\n        permissions: { env: [SUFFIX, UNSET], secrets: [TOKEN] }\n  \
         b:\n    needs: [a]\n    steps:\n      - uses: ./ok.wasm\n        with: { got: \"${{ needs.a.outputs.said }}\" }\n",
        Some(plugins.clone()),
    )
    .await;
    let requests = plugins.requests.lock().unwrap().clone();
    assert_eq!(
        requests[0].inputs,
        [("said".to_owned(), "hi there".to_owned())]
    );
    assert_eq!(requests[0].env, [("SUFFIX".to_owned(), "!".to_owned())]);
    assert_eq!(
        requests[0].secrets,
        [("TOKEN".to_owned(), "t0ps3cret".to_owned())]
    );
    assert_eq!(
        requests[1].inputs,
        [("got".to_owned(), "hi there".to_owned())]
    );
    assert!(requests[1].secrets.is_empty());
    assert_eq!(lines(&events), ["secret ***"]);
    assert_eq!(
        step_results(&events),
        [StepResult::Success, StepResult::Success]
    );
}

#[tokio::test]
async fn a_failing_plugin_fails_its_step_and_a_hanging_one_times_out() {
    let plugins = Arc::new(Plugins::default());
    let events = run(
        "jobs:\n  a:\n    steps:\n      - uses: ./fail.wasm\n  b:\n    steps:\n      - uses: ./hang.wasm\n        timeout: 100ms\n",
        Some(plugins),
    )
    .await;
    let mut results = step_results(&events);
    results.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(results, [StepResult::Failed, StepResult::TimedOut]);
    let mut notes = lines(&events);
    notes.sort();
    assert_eq!(
        notes,
        [
            "kiln: plugin `./fail.wasm` failed: nope",
            "kiln: step timed out; the plugin was stopped"
        ]
    );
}
