//! The `action` world: a step's `uses:`.

use std::path::{Component, Path, PathBuf};

use crate::{FromInput, InputError, Inputs, Metadata};

/// A step action. Implement it and export it with [`crate::action!`]:
///
/// ```
/// use kiln_sdk::{Action, ActionError, Context, InputSpec, Metadata, Outputs};
///
/// struct Hello;
///
/// impl Action for Hello {
///     fn metadata() -> Metadata {
///         Metadata::new("hello", "0.1.0", "Says hello")
///             .input(InputSpec::with_default("name", "who to greet", "world"))
///             .output("greeting", "what was said")
///     }
///
///     fn run(ctx: &Context) -> Result<Outputs, ActionError> {
///         let name: String = ctx.input("name")?;
///         Ok(Outputs::new().set("greeting", format!("hello, {name}")))
///     }
/// }
///
/// kiln_sdk::action!(Hello);
/// # let ctx = kiln_sdk::testing::context::<Hello>().build();
/// # assert_eq!(Hello::run(&ctx).unwrap().get("greeting"), Some("hello, world"));
/// ```
pub trait Action {
    /// What this action is, accepts and needs.
    fn metadata() -> Metadata;

    /// Runs the action; `Ok` holds the step's outputs.
    fn run(ctx: &Context) -> Result<Outputs, ActionError>;
}

/// How an action fails: returned to the pipeline as the step's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionError {
    /// An input is missing or malformed; the message says which and why.
    InvalidInput(String),
    /// The action ran and failed; the message is shown to the user.
    Failed(String),
}

impl ActionError {
    /// [`ActionError::Failed`] with `message`.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    /// [`ActionError::InvalidInput`] with `message`.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }
}

impl From<InputError> for ActionError {
    fn from(e: InputError) -> Self {
        Self::InvalidInput(e.message().to_owned())
    }
}

impl std::fmt::Display for ActionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidInput(m) => write!(f, "invalid input: {m}"),
            Self::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ActionError {}

/// What a step hands to its action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// `with:` inputs, read through the action's [`crate::InputSpec`]s.
    pub inputs: Inputs,
    /// The guest path of the workspace, or `None` without `permissions.fs`.
    pub workspace: Option<PathBuf>,
    /// The job's name, e.g. `test (shard=1)`.
    pub job: String,
    /// The step's display name.
    pub step: String,
    /// The run's number.
    pub run_id: u64,
}

impl Context {
    /// Input `name`, parsed (see [`Inputs::get`]); a missing or malformed
    /// value is an [`ActionError::InvalidInput`] naming it.
    pub fn input<T: FromInput>(&self, name: &str) -> Result<T, ActionError> {
        Ok(self.inputs.get(name)?)
    }

    /// Input `name`, parsed, or `None` when not set and without a default.
    pub fn optional_input<T: FromInput>(&self, name: &str) -> Result<Option<T>, ActionError> {
        Ok(self.inputs.optional(name)?)
    }

    /// The workspace directory; an error naming the missing grant without it.
    pub fn workspace(&self) -> Result<&Path, ActionError> {
        self.workspace.as_deref().ok_or_else(|| {
            ActionError::failed(
                "this action needs the workspace: grant `permissions: { fs: read }` (or `write`)",
            )
        })
    }

    /// `relative` inside the workspace. An absolute path or one with `..` is
    /// an [`ActionError::InvalidInput`] naming `input`, before the sandbox
    /// would deny it with a vaguer error.
    pub fn workspace_path(&self, input: &str, relative: &Path) -> Result<PathBuf, ActionError> {
        let inside = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !inside || relative.as_os_str().is_empty() {
            return Err(ActionError::invalid_input(format!(
                "input `{input}` is `{}`: expected a path relative to the workspace, without `..`",
                relative.display()
            )));
        }
        Ok(self.workspace()?.join(relative))
    }
}

/// The outputs an action returns, in order.
///
/// ```
/// let out = kiln_sdk::Outputs::new().set("path", "out/report.txt").set("bytes", 42);
/// assert_eq!(out.get("bytes"), Some("42"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    pairs: Vec<(String, String)>,
}

impl Outputs {
    /// No outputs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets output `key`; a later value for the same key replaces it.
    pub fn set(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        let key = key.into();
        let value = value.to_string();
        match self.pairs.iter_mut().find(|(k, _)| *k == key) {
            Some(pair) => pair.1 = value,
            None => self.pairs.push((key, value)),
        }
        self
    }

    /// The value of output `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The pairs, in the order they were first set.
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(workspace: Option<&str>) -> Context {
        Context {
            inputs: Inputs::default(),
            workspace: workspace.map(PathBuf::from),
            job: "j".into(),
            step: "s".into(),
            run_id: 1,
        }
    }

    #[test]
    fn workspace_paths_stay_inside() {
        let c = ctx(Some("/workspace"));
        assert_eq!(
            c.workspace_path("out", Path::new("a/./b.txt")).unwrap(),
            PathBuf::from("/workspace/a/./b.txt")
        );
        for bad in ["../etc/passwd", "/etc/passwd", "a/../../b", ""] {
            assert_eq!(
                c.workspace_path("out", Path::new(bad)),
                Err(ActionError::InvalidInput(format!(
                    "input `out` is `{bad}`: expected a path relative to the workspace, without `..`"
                )))
            );
        }
    }

    #[test]
    fn no_workspace_names_the_grant() {
        assert_eq!(
            ctx(None).workspace(),
            Err(ActionError::Failed(
                "this action needs the workspace: grant `permissions: { fs: read }` (or `write`)"
                    .into()
            ))
        );
    }

    #[test]
    fn outputs_replace_a_key_in_place() {
        let out = Outputs::new().set("a", 1).set("b", 2).set("a", 3);
        assert_eq!(
            out.into_pairs(),
            vec![("a".into(), "3".into()), ("b".into(), "2".into())]
        );
    }

    #[test]
    fn input_errors_become_invalid_input() {
        let c = ctx(None);
        assert_eq!(
            c.input::<String>("x"),
            Err(ActionError::InvalidInput(
                "input `x` is required: set it under `with:`".into()
            ))
        );
    }
}
