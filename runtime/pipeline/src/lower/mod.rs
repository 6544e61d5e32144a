//! Decoded jobs → plan jobs: templates parsed, references checked,
//! `${VAR}` interpolated, matrices expanded into combinations.

mod scope;
mod text;

use std::collections::{BTreeMap, HashSet};

use crate::LoadOptions;
use crate::ast::{self, Pair, StepKind};
use crate::diagnostic::Diagnostic;
use crate::expr::Template;
use crate::matrix::{self, Combination};
use crate::plan::{ArtifactSpec, CacheSpec, Job, JobId, Step, StepAction, UsesSpans};
use crate::yaml::LineIndex;
use scope::Scope;
use text::{Texts, Visible};

/// A job ready for the graph: everything but its id, needs and matrix
/// values, which differ per instance.
pub(crate) struct Lowered {
    pub job: Job,
    pub combinations: Vec<Combination>,
}

/// The pipeline-level values the plan carries.
pub(crate) struct Header {
    pub env: Vec<(String, Template)>,
}

/// Lowers every job (and the pipeline env), collecting diagnostics.
pub(crate) fn lower(
    pipeline: &ast::Pipeline,
    options: &LoadOptions,
    lines: &LineIndex<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> (Header, Vec<Option<Lowered>>) {
    let keys: HashSet<&str> = pipeline.jobs.iter().map(|j| j.key.as_str()).collect();
    let all_jobs = |name: &str| keys.contains(name);
    let mut texts = Texts {
        lines,
        diagnostics: Vec::new(),
        reported_cycles: HashSet::new(),
    };
    let top = Visible {
        job: "",
        needs: &[],
        all_jobs: &all_jobs,
        matrix: None,
        steps: &[],
    };
    let base = Scope::new(options, &[&pipeline.env]);
    let env = env_templates(&mut texts, &pipeline.env, &base, &top);
    let jobs = pipeline
        .jobs
        .iter()
        .map(|j| lower_job(&mut texts, pipeline, j, options, &all_jobs))
        .collect();
    diagnostics.append(&mut texts.diagnostics);
    (Header { env }, jobs)
}

/// `env:` values interpolated in `scope` (a variable that refers to its
/// own name reads the next outer level: `PATH: ${PATH}:/opt/bin`).
fn env_templates(
    texts: &mut Texts<'_>,
    pairs: &[Pair],
    scope: &Scope<'_>,
    visible: &Visible<'_>,
) -> Vec<(String, Template)> {
    pairs
        .iter()
        .filter_map(|p| {
            // Only a direct self-reference reads the outer level; an
            // indirect one (`A: ${B}`, `B: ${A}`) stays a reported cycle.
            let own = if refers_to_itself(&p.name, &p.value.value) {
                scope.shadowing(&p.name)
            } else {
                scope.clone()
            };
            let lookup = |name: &str| own.get(name);
            let t = texts.template(&p.value, visible, Some(&lookup))?;
            Some((p.name.clone(), t))
        })
        .collect()
}

fn lower_job(
    texts: &mut Texts<'_>,
    pipeline: &ast::Pipeline,
    job: &ast::Job,
    options: &LoadOptions,
    all_jobs: &dyn Fn(&str) -> bool,
) -> Option<Lowered> {
    let needs: Vec<&str> = job.needs.iter().map(|t| t.value.as_str()).collect();
    let combinations = match &job.matrix {
        Some(m) => match matrix::expand(m, &job.key) {
            Ok(c) => c,
            Err(d) => {
                texts.diagnostics.push(d);
                Vec::new()
            }
        },
        None => vec![Vec::new()],
    };
    let matrix_keys: Option<Vec<String>> = job.matrix.as_ref().map(|m| {
        let mut keys: Vec<String> = m.dimensions.iter().map(|(k, _)| k.clone()).collect();
        for (k, _) in m.include.iter().flatten() {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        keys
    });
    let all_ids: Vec<String> = job
        .steps
        .iter()
        .filter_map(|s| s.id.as_ref())
        .map(|t| t.value.clone())
        .collect();
    let job_visible = Visible {
        job: &job.key,
        needs: &needs,
        all_jobs,
        matrix: matrix_keys.as_deref(),
        steps: &[],
    };
    let scope = Scope::new(options, &[&job.env, &pipeline.env]);
    let lookup = |name: &str| scope.get(name);
    let env = env_templates(texts, &job.env, &scope, &job_visible);
    let condition = job
        .condition
        .as_ref()
        .and_then(|c| texts.condition(c, &job_visible));
    let image = job
        .image
        .as_ref()
        .and_then(|t| texts.template(t, &job_visible, Some(&lookup)));
    let services = job
        .services
        .iter()
        .filter_map(|s| {
            let image = texts.template(s.image.as_ref()?, &job_visible, Some(&lookup))?;
            let env = env_templates(texts, &s.env, &scope, &job_visible);
            Some(crate::container::Service {
                name: s.name.clone(),
                image,
                env,
                ports: s.ports.clone(),
                command: s.command.clone(),
                health: s.health.clone(),
                span: s.span,
            })
        })
        .collect();
    let outputs = job
        .outputs
        .iter()
        .filter_map(|p| {
            Some((
                p.name.clone(),
                texts.template(
                    &p.value,
                    &Visible {
                        steps: &all_ids,
                        ..job_visible
                    },
                    Some(&lookup),
                )?,
            ))
        })
        .collect();
    let mut steps = Vec::with_capacity(job.steps.len());
    let mut seen_ids: Vec<String> = Vec::new();
    for step in &job.steps {
        let step_visible = Visible {
            steps: &seen_ids,
            ..job_visible
        };
        if let Some(s) = lower_step(texts, pipeline, job, step, options, &step_visible) {
            steps.push(s);
        }
        if let Some(id) = &step.id {
            if seen_ids.contains(&id.value) {
                texts.diagnostics.push(
                    Diagnostic::error(
                        "duplicate-step-id",
                        id.span,
                        format!("job `{}` has two steps with `id: {}`", job.key, id.value),
                    )
                    .with_help("give each step of a job its own `id`"),
                );
            } else {
                seen_ids.push(id.value.clone());
            }
        }
    }
    let download = job
        .download
        .as_ref()
        .map(|names| check_downloads(texts, pipeline, job, names));
    let cache = job.cache.as_ref().and_then(|c| {
        Some(CacheSpec {
            key: texts.template(&c.key, &job_visible, Some(&lookup))?,
            restore_keys: c
                .restore_keys
                .iter()
                .map(|t| texts.template(t, &job_visible, Some(&lookup)))
                .collect::<Option<_>>()?,
            paths: c.paths.iter().map(|t| t.value.clone()).collect(),
        })
    });
    let artifacts = job
        .artifacts
        .iter()
        .map(|a| ArtifactSpec {
            name: a.name.clone(),
            paths: a.paths.iter().map(|t| t.value.clone()).collect(),
        })
        .collect();
    if let Some(deploy) = &job.deploy {
        let visible = Visible {
            steps: &[],
            ..job_visible
        };
        steps.extend(lower_deploy(texts, deploy, &visible, &lookup));
    }
    let title = job
        .title
        .as_ref()
        .map_or_else(|| job.key.clone(), |t| t.value.clone());
    Some(Lowered {
        job: Job {
            id: JobId(0),
            name: job.key.clone(),
            key: job.key.clone(),
            title,
            needs: Vec::new(),
            condition,
            env,
            matrix: BTreeMap::new(),
            image,
            container: job.container.clone(),
            services,
            steps,
            timeout: job.timeout,
            retry: job.retry.clone(),
            continue_on_error: job.continue_on_error,
            outputs,
            artifacts,
            download,
            cache,
            span: job.key_span,
        },
        combinations,
    })
}

fn lower_step(
    texts: &mut Texts<'_>,
    pipeline: &ast::Pipeline,
    job: &ast::Job,
    step: &ast::Step,
    options: &LoadOptions,
    visible: &Visible<'_>,
) -> Option<Step> {
    let scope = Scope::new(options, &[&step.env, &job.env, &pipeline.env]);
    let lookup = |name: &str| scope.get(name);
    let env = env_templates(texts, &step.env, &scope, visible);
    let condition = step
        .condition
        .as_ref()
        .and_then(|c| texts.condition(c, visible));
    let (action, fallback_name) = match &step.kind {
        StepKind::Run(script) => {
            // `$VAR` and `${VAR}` in scripts belong to the shell.
            let script_t = texts.template(script, visible, None)?;
            let shell = step
                .shell
                .as_ref()
                .or(job.defaults.shell.as_ref())
                .or(pipeline.defaults.shell.as_ref())
                .map_or_else(default_shell, |t| shell_words(&t.value));
            let dir = step
                .working_directory
                .as_ref()
                .or(job.defaults.working_directory.as_ref())
                .or(pipeline.defaults.working_directory.as_ref());
            let working_directory = match dir {
                Some(t) => Some(texts.template(t, visible, Some(&lookup))?),
                None => None,
            };
            let first_line = script
                .value
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("run");
            (
                StepAction::Run {
                    script: script_t,
                    shell,
                    working_directory,
                },
                first_line.to_owned(),
            )
        }
        StepKind::Uses(reference) => {
            let with = step
                .with
                .iter()
                .filter_map(|p| {
                    Some((
                        p.name.clone(),
                        texts.template(&p.value, visible, Some(&lookup))?,
                    ))
                })
                .collect();
            (
                StepAction::Uses {
                    reference: reference.value.clone(),
                    with,
                    permissions: step.permissions.clone(),
                    spans: UsesSpans {
                        reference: reference.span,
                        with: step
                            .with
                            .iter()
                            .map(|p| (p.name.clone(), p.name_span))
                            .collect(),
                        with_key: step.with_key,
                        permissions: step.permissions_key,
                    },
                },
                reference.value.clone(),
            )
        }
        StepKind::UploadArtifact { name, path } => (
            StepAction::UploadArtifact {
                name: name.clone(),
                path: path.clone(),
            },
            format!("artifact {path}"),
        ),
        StepKind::DownloadArtifact { name } => (
            StepAction::DownloadArtifact { name: name.clone() },
            format!("download artifact {name}"),
        ),
        StepKind::Unsupported { kind, message } => (
            StepAction::Unsupported {
                kind: kind.clone(),
                message: message.clone(),
            },
            kind.clone(),
        ),
        StepKind::Invalid => return None,
    };
    let image = match &step.image {
        Some(t) => Some(texts.template(t, visible, Some(&lookup))?),
        None => None,
    };
    Some(Step {
        id: step.id.as_ref().map(|t| t.value.clone()),
        image,
        name: step
            .name
            .as_ref()
            .map_or(fallback_name, |t| t.value.clone()),
        action,
        condition,
        env,
        timeout: step.timeout,
        continue_on_error: step.continue_on_error,
        span: step.span,
    })
}

/// `download:` may only name artifacts that a needed job declares in its
/// `artifacts:` (or uploads with a seed `artifact:` step).
fn check_downloads(
    texts: &mut Texts<'_>,
    pipeline: &ast::Pipeline,
    job: &ast::Job,
    names: &[ast::Text],
) -> Vec<String> {
    let mut offered: Vec<&str> = Vec::new();
    for need in &job.needs {
        let Some(needed) = pipeline.jobs.iter().find(|j| j.key == need.value) else {
            continue; // reported by the graph
        };
        offered.extend(needed.artifacts.iter().map(|a| a.name.as_str()));
        offered.extend(needed.steps.iter().filter_map(|s| match &s.kind {
            StepKind::UploadArtifact { name, .. } => Some(name.as_str()),
            _ => None,
        }));
    }
    for name in names {
        if offered.contains(&name.value.as_str()) {
            continue;
        }
        let mut d = Diagnostic::error(
            "unknown-artifact",
            name.span,
            format!(
                "job `{}` downloads artifact `{}`, which no job in its `needs` uploads",
                job.key, name.value
            ),
        )
        .with_label("no needed job has this artifact");
        d.help = crate::suggest::help(&name.value, offered.iter().copied(), || {
            Some(if offered.is_empty() {
                "add the job that uploads it to `needs`".to_owned()
            } else {
                format!("the needed jobs upload: {}", offered.join(", "))
            })
        });
        texts.diagnostics.push(d);
    }
    names.iter().map(|t| t.value.clone()).collect()
}

/// A deploy job becomes one step, `deploy <service>`, whose action is the
/// rollout; its strings become templates like any step's.
fn lower_deploy(
    texts: &mut Texts<'_>,
    deploy: &ast::Deploy,
    visible: &Visible<'_>,
    lookup: &text::Lookup<'_>,
) -> Option<Step> {
    use crate::plan::{Deploy, DeployRun, PluginUse};
    let run = match (&deploy.command, &deploy.image) {
        (Some(c), _) => DeployRun::Command(texts.template(c, visible, Some(lookup))?),
        (None, Some(i)) => DeployRun::Image(texts.template(i, visible, Some(lookup))?),
        (None, None) => return None,
    };
    let version = match &deploy.version {
        Some(v) => Some(texts.template(v, visible, Some(lookup))?),
        None => None,
    };
    let env = pair_templates(texts, &deploy.env, visible, lookup)?;
    let plugin = |texts: &mut Texts<'_>, written: &ast::PluginUse| {
        Some(PluginUse {
            uses: written.uses.value.clone(),
            with: pair_templates(texts, &written.with, visible, lookup)?,
            spans: UsesSpans {
                reference: written.uses.span,
                with: written
                    .with
                    .iter()
                    .map(|p| (p.name.clone(), p.name_span))
                    .collect(),
                with_key: None,
                permissions: None,
            },
        })
    };
    let strategy = match &deploy.strategy {
        Some(s) => plugin(texts, s)?,
        // The default is written nowhere: problems point at `deploy:`.
        None => PluginUse {
            uses: DEFAULT_STRATEGY.into(),
            with: Vec::new(),
            spans: UsesSpans {
                reference: deploy.span,
                with: Vec::new(),
                with_key: None,
                permissions: None,
            },
        },
    };
    let health = match &deploy.health {
        Some(h) => Some(plugin(texts, h)?),
        None => None,
    };
    Some(Step {
        id: None,
        name: format!("deploy {}", deploy.service),
        action: StepAction::Deploy(Box::new(Deploy {
            target: deploy.target,
            service: deploy.service.clone(),
            run,
            version,
            port: deploy.port,
            replicas: deploy.replicas,
            env,
            readiness: deploy.readiness.clone(),
            strategy,
            health,
            manual_approval: deploy.manual_approval,
            approval_timeout: deploy.approval_timeout,
            proxy: deploy.proxy.clone(),
        })),
        condition: None,
        env: Vec::new(),
        image: None,
        timeout: None,
        continue_on_error: false,
        span: deploy.span,
    })
}

fn pair_templates(
    texts: &mut Texts<'_>,
    pairs: &[Pair],
    visible: &Visible<'_>,
    lookup: &text::Lookup<'_>,
) -> Option<Vec<(String, Template)>> {
    pairs
        .iter()
        .map(|p| {
            Some((
                p.name.clone(),
                texts.template(&p.value, visible, Some(lookup))?,
            ))
        })
        .collect()
}

/// The strategy of a `deploy:` without `strategy:`.
const DEFAULT_STRATEGY: &str = "kiln/rolling@1";

fn refers_to_itself(name: &str, value: &str) -> bool {
    value.match_indices("${").any(|(i, _)| {
        let rest = &value[i + 2..];
        rest.strip_prefix(name)
            .is_some_and(|after| after.starts_with(['}', ':', '/']))
    })
}

fn default_shell() -> Vec<String> {
    vec!["sh".into(), "-e".into()]
}

/// `shell: bash` runs `bash -e` (fail on the first error, like the default
/// `sh -e`); any longer command line is taken as written.
fn shell_words(text: &str) -> Vec<String> {
    let words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    match words.as_slice() {
        [] => default_shell(),
        [one] if crate::POSIX_SHELLS.contains(&one.as_str()) => {
            vec![one.clone(), "-e".into()]
        }
        _ => words,
    }
}
