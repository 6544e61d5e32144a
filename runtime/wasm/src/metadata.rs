//! What a plugin says about itself (`metadata()`), in host types that do
//! not depend on the WIT version it was built against.

use crate::bindings::v0_1::types as wit;

/// A plugin's self-description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Short name, e.g. `render`.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// One line for `kiln plugin inspect`.
    pub description: String,
    /// Inputs it accepts under `with:`.
    pub inputs: Vec<InputSpec>,
    /// Outputs it may return.
    pub outputs: Vec<OutputSpec>,
    /// What the pipeline must grant under `permissions:`.
    pub capabilities: Vec<Capability>,
}

/// One input under `with:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    /// The key.
    pub name: String,
    /// What it means.
    pub description: String,
    /// Whether `with:` must set it.
    pub required: bool,
    /// Used when `with:` does not set it.
    pub default: Option<String>,
}

/// One output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    /// The key (`steps.<id>.outputs.<key>`).
    pub name: String,
    /// What it means.
    pub description: String,
}

/// One capability a plugin needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// `permissions.fs: read`, or `write` when `write` is true.
    Fs {
        /// Write access is needed.
        write: bool,
    },
    /// `permissions.network` with at least one `host:port`; the text says
    /// what the plugin connects to.
    Network(String),
    /// `permissions.env` naming this variable.
    Env(String),
    /// `permissions.secrets` naming this secret.
    Secret(String),
}

/// A capability the plugin declares and the step does not grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ungranted {
    /// What is needed, e.g. ``the secret `TOKEN` ``.
    pub what: String,
    /// How to grant it, e.g. ``add `secrets: [TOKEN]` under `permissions:` ``.
    pub fix: String,
}

impl Metadata {
    /// `given` with the default of each declared input it leaves out.
    pub fn with_defaults(&self, given: &[(String, String)]) -> Vec<(String, String)> {
        let mut all = given.to_vec();
        for spec in &self.inputs {
            if let Some(default) = &spec.default
                && !given.iter().any(|(k, _)| *k == spec.name)
            {
                all.push((spec.name.clone(), default.clone()));
            }
        }
        all
    }

    /// Required inputs without a default for which `is_given` is false.
    pub fn missing_inputs<'a>(
        &'a self,
        is_given: impl Fn(&str) -> bool + 'a,
    ) -> impl Iterator<Item = &'a InputSpec> + 'a {
        self.inputs
            .iter()
            .filter(move |spec| spec.required && spec.default.is_none() && !is_given(&spec.name))
    }

    /// [`Metadata::with_defaults`] for the parameters a strategy or health
    /// check is called with.
    pub(crate) fn with_default_params(&self, given: &[wit::KeyValue]) -> Vec<wit::KeyValue> {
        let pairs: Vec<(String, String)> = given
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.clone()))
            .collect();
        self.with_defaults(&pairs)
            .into_iter()
            .map(|(key, value)| wit::KeyValue { key, value })
            .collect()
    }

    /// Every declared capability `grants` does not cover, in declaration
    /// order.
    pub fn ungranted(&self, grants: &kiln_pipeline::Permissions) -> Vec<Ungranted> {
        use kiln_pipeline::FsAccess;
        let gap = |what: String, fix: String| Some(Ungranted { what, fix });
        self.capabilities
            .iter()
            .filter_map(|need| match need {
                Capability::Fs { write: false } if grants.fs == FsAccess::None => gap(
                    "read access to the workspace".into(),
                    "set `fs: read` under `permissions:`".into(),
                ),
                Capability::Fs { write: true } if grants.fs != FsAccess::Write => gap(
                    "write access to the workspace".into(),
                    "set `fs: write` under `permissions:`".into(),
                ),
                Capability::Network(what) if grants.network.is_empty() => gap(
                    format!("network access ({what})"),
                    "add `network: [\"host:port\"]` under `permissions:`".into(),
                ),
                Capability::Env(var) if !grants.env.iter().any(|g| g == var) => gap(
                    format!("the environment variable `{var}`"),
                    format!("add `env: [{var}]` under `permissions:`"),
                ),
                Capability::Secret(secret)
                    if !grants
                        .secrets
                        .iter()
                        .any(|g| g.eq_ignore_ascii_case(secret)) =>
                {
                    gap(
                        format!("the secret `{secret}`"),
                        format!("add `secrets: [{secret}]` under `permissions:`"),
                    )
                }
                _ => None,
            })
            .collect()
    }
}
