//! `uses:` steps: inputs rendered, grants picked, the plugin run through
//! the [`crate::ActionExecutor`] under the same deadlines as a script.

use kiln_pipeline::expr::Template;
use kiln_pipeline::{Permissions, Step};

use super::StepRunner;
use crate::action::{ActionExit, ActionRequest};
use crate::event::StepResult;

impl StepRunner<'_> {
    pub(super) async fn execute_uses(
        &mut self,
        index: usize,
        step: &Step,
        reference: &str,
        with: &[(String, Template)],
        permissions: &Permissions,
    ) -> (StepResult, Option<i32>, Vec<(String, String)>) {
        let Some(actions) = self.shared.options.actions.clone() else {
            self.note(
                index,
                &format!(
                    "`uses: {reference}`: this run has no plugin host, so plugin steps cannot run"
                ),
            );
            return (StepResult::InfrastructureError, None, Vec::new());
        };
        let deadline = self.step_deadline(step);
        let request = match self.action_request(index, step, reference, with, permissions) {
            Ok(mut request) => {
                request.deadline = deadline.map(|d| d.into_std());
                request
            }
            Err(message) => {
                self.note(index, &message);
                return (StepResult::Failed, None, Vec::new());
            }
        };
        let (stopped_by, exit) = self
            .supervise(index, deadline, |tx, control| {
                actions.run_action(request, tx, control)
            })
            .await;
        if let Some(result) = stopped_by {
            let what = match result {
                StepResult::TimedOut => "timed out",
                _ => "was cancelled",
            };
            self.note(index, &format!("step {what}; the plugin was stopped"));
            return (result, None, Vec::new());
        }
        match exit {
            ActionExit::Success(outputs) => {
                let masker = &self.shared.masker;
                let outputs = outputs
                    .into_iter()
                    .map(|(k, v)| (k, masker.mask(&v).into_owned()))
                    .collect();
                (StepResult::Success, None, outputs)
            }
            ActionExit::Failed(message) => {
                self.note(index, &message);
                (StepResult::Failed, None, Vec::new())
            }
            ActionExit::Infrastructure(message) => {
                self.note(index, &message);
                (StepResult::InfrastructureError, None, Vec::new())
            }
        }
    }

    /// Renders `with:` and the step env, and keeps only granted env
    /// variables and secrets.
    fn action_request(
        &mut self,
        index: usize,
        step: &Step,
        reference: &str,
        with: &[(String, Template)],
        permissions: &Permissions,
    ) -> Result<ActionRequest, String> {
        let referenced = self.secrets_for(
            with.iter()
                .map(|(_, t)| t)
                .chain(step.env.iter().map(|(_, t)| t)),
        );
        let status = self.current_status();
        let (env, inputs) = self.with_context(status, referenced, |this, cx| {
            let env = this.step_env(this.host_env(), step, cx)?;
            let mut inputs = Vec::with_capacity(with.len());
            for (name, template) in with {
                let value = template
                    .render(cx)
                    .map_err(|e| format!("cannot evaluate `with.{name}`: {e}"))?;
                inputs.push((name.clone(), value));
            }
            Ok::<_, String>((env, inputs))
        })?;
        let granted_env = permissions
            .env
            .iter()
            .filter_map(|name| Some((name.clone(), env.get(name)?.to_owned())))
            .collect();
        let mut secrets = Vec::new();
        for name in &permissions.secrets {
            match self.shared.secret(name) {
                Some(value) => secrets.push((name.clone(), value)),
                None => self.note(
                    index,
                    &format!("secret `{name}` is granted to the plugin but not set"),
                ),
            }
        }
        Ok(ActionRequest {
            reference: reference.to_owned(),
            job: self.job.name.clone(),
            step: index,
            step_name: step.name.clone(),
            run_id: self.shared.options.run_id,
            inputs,
            permissions: permissions.clone(),
            workspace: self.shared.options.workspace.clone(),
            env: granted_env,
            secrets,
            deadline: None,
        })
    }
}
