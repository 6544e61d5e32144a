//! Source text and positions inside it.

use std::sync::Arc;

/// A pipeline file's name (as the user gave it) and its full text.
///
/// Cheap to clone: the text is shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The path as shown in diagnostics (`ci/pipeline.yml`).
    pub name: String,
    /// The whole file.
    pub text: Arc<str>,
}

/// A byte range in a [`SourceFile`] plus the 1-based line and column of its
/// start, which is what users read in `file:line:col`.
///
/// Columns count characters (not bytes) so a caret lines up under UTF-8 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub struct Span {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
    /// 1-based line of `start`.
    pub line: u32,
    /// 1-based column (in characters) of `start`.
    pub col: u32,
}

impl SourceFile {
    /// Wraps a file's name and text.
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }
}
