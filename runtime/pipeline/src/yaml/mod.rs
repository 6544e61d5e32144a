//! YAML text → a spanned node tree (anchors, aliases and merge keys
//! resolved, duplicate keys reported, hostile input bounded).

mod loader;
mod node;
mod position;

pub(crate) use loader::{Limits, parse};
pub(crate) use node::{Entry, Key, Node, NodeKind, ScalarType};
pub(crate) use position::LineIndex;

#[cfg(test)]
mod tests;
