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

impl From<wit::Metadata> for Metadata {
    fn from(m: wit::Metadata) -> Self {
        Self {
            name: m.name,
            version: m.version,
            description: m.description,
            inputs: m
                .inputs
                .into_iter()
                .map(|i| InputSpec {
                    name: i.name,
                    description: i.description,
                    required: i.required,
                    default: i.default,
                })
                .collect(),
            outputs: m
                .outputs
                .into_iter()
                .map(|o| OutputSpec {
                    name: o.name,
                    description: o.description,
                })
                .collect(),
            capabilities: m
                .capabilities
                .into_iter()
                .map(|c| match c {
                    wit::Capability::Fs(access) => Capability::Fs {
                        write: matches!(access, wit::FsAccess::Write),
                    },
                    wit::Capability::Network(what) => Capability::Network(what),
                    wit::Capability::Env(name) => Capability::Env(name),
                    wit::Capability::Secret(name) => Capability::Secret(name),
                })
                .collect(),
        }
    }
}
