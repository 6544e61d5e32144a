//! What a plugin declares about itself: `metadata()` of every world.

/// Access to the workspace a plugin asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsAccess {
    /// The workspace, read-only (`permissions.fs: read`).
    Read,
    /// The workspace, read-write (`permissions.fs: write`).
    Write,
}

/// One capability a plugin needs; the pipeline must grant each under the
/// step's `permissions:`, or `kiln validate` rejects the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// `permissions.fs: read|write`.
    Fs(FsAccess),
    /// `permissions.network`: the payload says what the plugin connects to,
    /// e.g. "the `url` input"; the grant names the concrete `host:port`.
    Network(String),
    /// `permissions.env`: this environment variable.
    Env(String),
    /// `permissions.secrets`: this secret, read with [`crate::host::secret`].
    Secret(String),
}

/// One input a plugin accepts under `with:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    /// The key under `with:`.
    pub name: String,
    /// One line for `kiln plugin inspect` and the docs.
    pub description: String,
    /// A missing required input is a `kiln validate` diagnostic.
    pub required: bool,
    /// Used when the pipeline does not set the input.
    pub default: Option<String>,
}

impl InputSpec {
    /// An input the pipeline must set.
    pub fn required(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            required: true,
            default: None,
        }
    }

    /// An input the pipeline may leave out (read it with
    /// [`crate::Inputs::optional`]).
    pub fn optional(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            required: false,
            ..Self::required(name, description)
        }
    }

    /// An input with a default value.
    pub fn with_default(
        name: impl Into<String>,
        description: impl Into<String>,
        default: impl Into<String>,
    ) -> Self {
        Self {
            default: Some(default.into()),
            ..Self::optional(name, description)
        }
    }
}

/// One output a plugin may return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    /// The key downstream steps read as `steps.<id>.outputs.<name>`.
    pub name: String,
    /// One line for `kiln plugin inspect` and the docs.
    pub description: String,
}

/// What a plugin is and what it needs. Build it with the chained methods:
///
/// ```
/// use kiln_sdk::{Capability, FsAccess, InputSpec, Metadata};
/// let meta = Metadata::new("render", "1.0.0", "Renders a template into the workspace")
///     .input(InputSpec::required("template", "template file, relative to the workspace"))
///     .output("path", "the file written")
///     .capability(Capability::Fs(FsAccess::Write));
/// assert_eq!(meta.inputs[0].name, "template");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Short name, e.g. `render`.
    pub name: String,
    /// The plugin's own semver version.
    pub version: String,
    /// One sentence.
    pub description: String,
    /// Accepted `with:` inputs.
    pub inputs: Vec<InputSpec>,
    /// Outputs it may return.
    pub outputs: Vec<OutputSpec>,
    /// Capabilities the pipeline must grant.
    pub capabilities: Vec<Capability>,
}

impl Metadata {
    /// A plugin with no inputs, outputs or capabilities yet.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            capabilities: Vec::new(),
        }
    }

    /// Adds an input.
    pub fn input(mut self, spec: InputSpec) -> Self {
        self.inputs.push(spec);
        self
    }

    /// Adds an output.
    pub fn output(mut self, name: impl Into<String>, description: impl Into<String>) -> Self {
        self.outputs.push(OutputSpec {
            name: name.into(),
            description: description.into(),
        });
        self
    }

    /// Adds a required capability.
    pub fn capability(mut self, capability: Capability) -> Self {
        self.capabilities.push(capability);
        self
    }
}
