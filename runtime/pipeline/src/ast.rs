//! The decoded pipeline before expressions, variables, the graph and the
//! matrix are resolved: typed and spanned, but still holding raw text.

use std::time::Duration;

use crate::plan::{Permissions, RetryPolicy};
use crate::source::Span;

/// A string value from the file and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Text {
    pub value: String,
    pub span: Span,
    /// Byte offset where `value` appears verbatim in the source (see
    /// `yaml::Scalar::verbatim_at`).
    pub verbatim_at: Option<usize>,
}

/// A `name: value` pair of `env:`, `with:` or `outputs:`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pair {
    pub name: String,
    pub name_span: Span,
    pub value: Text,
}

/// `defaults: { run: { shell, working-directory } }`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RunDefaults {
    pub shell: Option<Text>,
    pub working_directory: Option<Text>,
}

/// The whole file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pipeline {
    pub name: Option<Text>,
    pub env: Vec<Pair>,
    pub timeout: Option<Duration>,
    pub defaults: RunDefaults,
    pub jobs: Vec<Job>,
}

/// One entry of `jobs:` (or the seed's `stages:`).
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub key: String,
    pub key_span: Span,
    pub title: Option<Text>,
    pub needs: Vec<Text>,
    pub condition: Option<Text>,
    pub env: Vec<Pair>,
    pub image: Option<Text>,
    pub container: crate::container::ContainerOptions,
    pub services: Vec<Service>,
    pub steps: Vec<Step>,
    pub timeout: Option<Duration>,
    pub retry: RetryPolicy,
    pub continue_on_error: bool,
    pub matrix: Option<Matrix>,
    pub outputs: Vec<Pair>,
    pub defaults: RunDefaults,
    pub artifacts: Vec<Artifact>,
    pub download: Option<Vec<Text>>,
    pub cache: Option<Cache>,
    /// Boxed: few jobs deploy, and inline it made every job 60 % larger
    /// (a large file holds thousands while it is lowered).
    pub deploy: Option<Box<Deploy>>,
}

/// One `name: paths` entry of `artifacts:`.
#[derive(Debug, Clone)]
pub(crate) struct Artifact {
    pub name: String,
    pub paths: Vec<Text>,
}

/// `cache: { key, restore-keys, paths }`.
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    pub key: Text,
    pub restore_keys: Vec<Text>,
    pub paths: Vec<Text>,
}

/// `deploy:` of a job, checked but with its strings still raw.
#[derive(Debug, Clone)]
pub(crate) struct Deploy {
    pub span: Span,
    pub target: crate::plan::DeployTarget,
    pub service: String,
    pub command: Option<Text>,
    pub image: Option<Text>,
    pub version: Option<Text>,
    pub port: Option<u16>,
    pub replicas: u32,
    pub env: Vec<Pair>,
    pub readiness: crate::plan::Readiness,
    pub strategy: Option<PluginUse>,
    pub health: Option<PluginUse>,
    pub manual_approval: bool,
    pub approval_timeout: Duration,
    pub proxy: crate::plan::ProxyConfig,
}

/// `{ uses, with }` as written.
#[derive(Debug, Clone)]
pub(crate) struct PluginUse {
    pub uses: Text,
    pub with: Vec<Pair>,
}

/// One step of a job.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub span: Span,
    pub id: Option<Text>,
    pub name: Option<Text>,
    pub kind: StepKind,
    pub image: Option<Text>,
    pub condition: Option<Text>,
    pub env: Vec<Pair>,
    pub timeout: Option<Duration>,
    pub continue_on_error: bool,
    pub shell: Option<Text>,
    pub working_directory: Option<Text>,
    pub with: Vec<Pair>,
    pub with_key: Option<Span>,
    pub permissions: Permissions,
    pub permissions_key: Option<Span>,
}

/// One `services:` entry, as written.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub name: String,
    pub span: Span,
    pub image: Option<Text>,
    pub env: Vec<Pair>,
    pub ports: Vec<(u16, u16)>,
    pub command: Vec<String>,
    pub health: Option<crate::container::HealthCheck>,
}

/// What a step does, as written.
#[derive(Debug, Clone)]
pub(crate) enum StepKind {
    Run(Text),
    Uses(Text),
    UploadArtifact {
        name: String,
        path: String,
    },
    DownloadArtifact {
        name: String,
    },
    Unsupported {
        kind: String,
        message: String,
    },
    /// Already reported (neither/both of `run` and `uses`); dropped later.
    Invalid,
}

/// `strategy.matrix`, values already converted to JSON.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Matrix {
    pub span: Span,
    /// Dimensions in declaration order.
    pub dimensions: Vec<(String, Vec<serde_json::Value>)>,
    pub include: Vec<Vec<(String, serde_json::Value)>>,
    pub exclude: Vec<Vec<(String, serde_json::Value)>>,
}
