//! Variable lookup for `${VAR}`: `--var` > step env > job env > pipeline
//! env > system env.

use crate::LoadOptions;
use crate::ast::Pair;

/// The env levels visible from one field, most specific first.
#[derive(Clone)]
pub(crate) struct Scope<'a> {
    options: &'a LoadOptions,
    levels: Vec<&'a [Pair]>,
    /// While interpolating the entry `name` of level 0, `${name}` means the
    /// value from the levels *outside* it (`PATH: ${PATH}:/opt/bin`).
    shadowed: Option<&'a str>,
}

impl<'a> Scope<'a> {
    /// A scope over `levels` (most specific first).
    pub(crate) fn new(options: &'a LoadOptions, levels: &[&'a Vec<Pair>]) -> Self {
        Self {
            options,
            levels: levels.iter().map(|l| l.as_slice()).collect(),
            shadowed: None,
        }
    }

    /// This scope, for interpolating the level-0 entry `name`.
    pub(crate) fn shadowing(&self, name: &'a str) -> Self {
        Self {
            shadowed: Some(name),
            ..self.clone()
        }
    }

    /// The raw (not yet interpolated) value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        if let Some(v) = self.options.vars.get(name) {
            return Some(v.clone());
        }
        let skip = usize::from(self.shadowed == Some(name));
        self.levels
            .iter()
            .skip(skip)
            .find_map(|level| level.iter().rev().find(|p| p.name == name))
            .map(|p| p.value.value.clone())
            .or_else(|| self.options.system_env.get(name).cloned())
    }
}
