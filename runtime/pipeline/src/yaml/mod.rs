//! YAML text → a spanned node tree (anchors, aliases and merge keys
//! resolved, duplicate keys reported, hostile input bounded).

mod loader;
mod node;
mod position;

pub(crate) use loader::{Document, Limits, parse};
pub(crate) use node::{Entry, Key, Node, NodeKind, Scalar, ScalarType, Style};
pub(crate) use position::LineIndex;

#[cfg(test)]
mod tests;
