//! Event stream → [`Node`] tree, with anchors, aliases, merge keys, duplicate
//! key detection and the limits that keep hostile input cheap.
//!
//! The builder is a loop over saphyr's events with an explicit stack: no
//! recursion, so nesting depth costs heap, not call stack, and the depth
//! limit is checked before a frame is pushed.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span as YamlSpan};

use super::node::{Entry, Key, Node, NodeKind, Scalar, Style};
use super::position::LineIndex;
use crate::diagnostic::Diagnostic;
use crate::source::Span;

/// Bounds on what a pipeline file may cost to parse.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Largest accepted file, checked before parsing.
    pub max_bytes: usize,
    /// Deepest accepted nesting of lists and mappings.
    pub max_depth: usize,
    /// Most nodes that anchors and aliases may copy in total (defeats
    /// "billion laughs" documents).
    pub max_alias_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: crate::MAX_FILE_BYTES,
            max_depth: 256,
            max_alias_nodes: 1_000_000,
        }
    }
}

/// A parsed document: the root (absent for an empty file) and non-fatal
/// problems such as duplicate keys.
#[derive(Debug)]
pub(crate) struct Document {
    pub root: Option<Node>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses `text` into a node tree. `Err` is a problem that stops parsing
/// (syntax error, a limit); everything else is collected in the document.
pub(crate) fn parse(text: &str, limits: Limits) -> Result<Document, Diagnostic> {
    if text.len() > limits.max_bytes {
        return Err(Diagnostic::error(
            "file-too-large",
            Span {
                line: 1,
                col: 1,
                ..Span::default()
            },
            format!(
                "the file is {} bytes; pipeline files are limited to {} bytes",
                text.len(),
                limits.max_bytes
            ),
        )
        .with_help("split the pipeline or move data out of it"));
    }
    Builder::new(text, limits).run()
}

/// A collection being built.
struct Frame {
    kind: FrameKind,
    start: Span,
    anchor: usize,
    /// Nodes inside this collection so far (for the alias budget).
    size: usize,
}

enum FrameKind {
    Sequence(Vec<Node>),
    Mapping {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

struct Builder<'a> {
    text: &'a str,
    lines: LineIndex<'a>,
    limits: Limits,
    stack: Vec<Frame>,
    /// Anchored nodes by saphyr's anchor id, with their node counts.
    anchors: HashMap<usize, (Node, usize)>,
    copied: usize,
    root: Option<Node>,
    documents: usize,
    diagnostics: Vec<Diagnostic>,
}

impl<'a> Builder<'a> {
    fn new(text: &'a str, limits: Limits) -> Self {
        Self {
            text,
            lines: LineIndex::new(text),
            limits,
            stack: Vec::new(),
            anchors: HashMap::new(),
            copied: 0,
            root: None,
            documents: 0,
            diagnostics: Vec::new(),
        }
    }

    fn span(&self, s: &YamlSpan) -> Span {
        self.lines.span(s.start.index(), s.end.index())
    }

    fn run(mut self) -> Result<Document, Diagnostic> {
        for event in Parser::new_from_str(self.text) {
            let (event, yspan) = event.map_err(|e| {
                let at = self.lines.span(e.marker().index(), e.marker().index());
                // saphyr bounds flow nesting itself (before our own limit can
                // see it); say the same thing ours says.
                if e.info() == "recursion limit exceeded" {
                    return too_deep(at, self.limits.max_depth);
                }
                Diagnostic::error("yaml-syntax", at, format!("invalid YAML: {}", e.info()))
                    .with_help(
                        "check the indentation and the quoting around this point; \
                         a value holding `: ` or starting with `{`, `[`, `*`, `&` or `!` needs quotes",
                    )
            })?;
            let span = self.span(&yspan);
            self.event(event, span)?;
        }
        Ok(Document {
            root: self.root,
            diagnostics: self.diagnostics,
        })
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), Diagnostic> {
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(Diagnostic::error(
                        "multiple-documents",
                        span,
                        "a pipeline file holds one YAML document, found a second one",
                    )
                    .with_help("remove the `---` separator or split the file"));
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                let quoted_by_tag =
                    tag.is_some_and(|t| t.is_yaml_core_schema() && t.suffix == "str");
                let node = self.scalar(value.into_owned(), style, quoted_by_tag, span);
                self.complete(node, 1, anchor)?;
            }
            Event::SequenceStart(anchor, _) => {
                self.open(FrameKind::Sequence(Vec::new()), span, anchor)?
            }
            Event::MappingStart(anchor, _) => self.open(
                FrameKind::Mapping {
                    entries: Vec::new(),
                    key: None,
                },
                span,
                anchor,
            )?,
            Event::SequenceEnd | Event::MappingEnd => self.close(span)?,
            Event::Alias(id) => self.alias(id, span)?,
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
        Ok(())
    }

    fn scalar(&self, value: String, style: ScalarStyle, quoted_by_tag: bool, span: Span) -> Node {
        let style = match style {
            ScalarStyle::Plain if !quoted_by_tag => Style::Plain,
            ScalarStyle::Plain | ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                Style::Quoted
            }
            _ => Style::Block,
        };
        // Where does the value sit verbatim in the source? Plain text starts
        // at the span, quoted text one byte (the quote) later. Escapes,
        // folding and block scalars break the 1:1 mapping: then `None`.
        let content = match style {
            Style::Plain if !quoted_by_tag => Some(span.start),
            Style::Quoted
                if self
                    .text
                    .as_bytes()
                    .get(span.start)
                    .is_some_and(|b| *b == b'\'' || *b == b'"') =>
            {
                Some(span.start + 1)
            }
            _ => None,
        };
        let verbatim_at = content.filter(|&at| {
            !value.contains('\n') && self.text.get(at..at + value.len()) == Some(value.as_str())
        });
        Node {
            kind: NodeKind::Scalar(Scalar {
                value,
                style,
                verbatim_at,
            }),
            span,
        }
    }

    fn open(&mut self, kind: FrameKind, span: Span, anchor: usize) -> Result<(), Diagnostic> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(too_deep(span, self.limits.max_depth));
        }
        self.stack.push(Frame {
            kind,
            start: span,
            anchor,
            size: 0,
        });
        Ok(())
    }

    fn close(&mut self, end: Span) -> Result<(), Diagnostic> {
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        let span = Span {
            end: end.end.max(frame.start.end),
            ..frame.start
        };
        let kind = match frame.kind {
            FrameKind::Sequence(items) => NodeKind::Sequence(items),
            FrameKind::Mapping { entries, .. } => NodeKind::Mapping(self.finish_mapping(entries)),
        };
        self.complete(Node { kind, span }, frame.size + 1, frame.anchor)
    }

    fn alias(&mut self, id: usize, span: Span) -> Result<(), Diagnostic> {
        let Some((node, size)) = self.anchors.get(&id) else {
            return Err(
                Diagnostic::error("yaml-syntax", span, "invalid YAML: unknown anchor").with_help(
                    "define the anchor with `&name` before this `*name`, or fix its spelling",
                ),
            );
        };
        let (node, size) = (node.clone(), *size);
        self.charge(size, span)?;
        self.complete(node, size, 0)
    }

    /// Counts nodes copied for anchors/aliases against the budget.
    fn charge(&mut self, size: usize, span: Span) -> Result<(), Diagnostic> {
        self.copied = self.copied.saturating_add(size);
        if self.copied > self.limits.max_alias_nodes {
            return Err(Diagnostic::error(
                "alias-expansion-too-large",
                span,
                format!(
                    "anchors and aliases expand to more than {} nodes",
                    self.limits.max_alias_nodes
                ),
            )
            .with_help(
                "this looks like a \"billion laughs\" document; reduce the nesting of aliases",
            ));
        }
        Ok(())
    }

    /// Hands a finished node to its parent (or makes it the root).
    fn complete(&mut self, node: Node, size: usize, anchor: usize) -> Result<(), Diagnostic> {
        if anchor != 0 {
            self.charge(size, node.span)?;
            self.anchors.insert(anchor, (node.clone(), size));
        }
        let Some(parent) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        parent.size = parent.size.saturating_add(size);
        match &mut parent.kind {
            FrameKind::Sequence(items) => items.push(node),
            FrameKind::Mapping { entries, key } => match key.take() {
                Some(k) => entries.push((k, node)),
                None => *key = Some(node),
            },
        }
        Ok(())
    }

    /// Applies merge keys and rejects duplicate and non-string keys.
    ///
    /// Merged entries land where the `<<` key was written; keys written
    /// explicitly in the mapping win over merged ones, and earlier merge
    /// sources win over later ones (YAML merge-key semantics).
    fn finish_mapping(&mut self, raw: Vec<(Node, Node)>) -> Vec<Entry> {
        let has_merge = raw.iter().any(|(k, _)| k.scalar().is_some_and(is_merge));
        // Keys written explicitly win over merged ones wherever they appear.
        let explicit = if has_merge {
            Seen::from_names(
                &raw.iter()
                    .filter_map(|(k, _)| k.scalar())
                    .filter(|s| !is_merge(s))
                    .map(|s| s.value.as_str())
                    .collect::<Vec<_>>(),
            )
        } else {
            Seen::new()
        };
        let mut seen = Seen::new();
        let mut out = Vec::with_capacity(raw.len());
        let mut merged = Vec::new();
        for (key, value) in raw {
            let NodeKind::Scalar(scalar) = key.kind else {
                self.diagnostics.push(
                    Diagnostic::error(
                        "wrong-type",
                        key.span,
                        format!("expected a string as mapping key, found {}", key.describe()),
                    )
                    .with_help("use a plain name as the key, or quote it"),
                );
                continue;
            };
            if is_merge(&scalar) {
                merged.clear();
                self.merge_sources(&value, &mut merged);
                for entry in merged.drain(..) {
                    if !explicit.contains(&entry.key.name)
                        && seen.insert(&entry.key.name, entry.key.span).is_none()
                    {
                        out.push(entry);
                    }
                }
                continue;
            }
            if let Some(first) = seen.insert(&scalar.value, key.span) {
                self.diagnostics.push(
                    Diagnostic::error(
                        "duplicate-key",
                        key.span,
                        format!("duplicate key `{}`", scalar.value),
                    )
                    .with_label(format!(
                        "`{}` is already defined on line {}",
                        scalar.value, first.line
                    ))
                    .with_help("remove one of the two entries"),
                );
                continue;
            }
            out.push(Entry {
                key: Key {
                    name: scalar.value,
                    span: key.span,
                },
                value,
            });
        }
        out
    }

    fn merge_sources(&mut self, value: &Node, out: &mut Vec<Entry>) {
        match &value.kind {
            NodeKind::Mapping(entries) => out.extend(entries.iter().cloned()),
            NodeKind::Sequence(items) => {
                let mut taken = Seen::new();
                for item in items {
                    if let NodeKind::Mapping(entries) = &item.kind {
                        for e in entries {
                            if taken.insert(&e.key.name, e.key.span).is_none() {
                                out.push(e.clone());
                            }
                        }
                    } else {
                        self.diagnostics.push(bad_merge(item));
                    }
                }
            }
            NodeKind::Scalar(_) => self.diagnostics.push(bad_merge(value)),
        }
    }
}

fn too_deep(span: Span, limit: usize) -> Diagnostic {
    Diagnostic::error(
        "nesting-too-deep",
        span,
        format!("lists and mappings are nested deeper than {limit} levels"),
    )
    .with_help("flatten the structure; no pipeline needs this depth")
}

fn bad_merge(node: &Node) -> Diagnostic {
    Diagnostic::error(
        "wrong-type",
        node.span,
        format!(
            "expected a mapping or a list of mappings for `<<`, found {}",
            node.describe()
        ),
    )
    .with_help("merge keys take an alias of a mapping: `<<: *defaults`")
}

fn is_merge(s: &Scalar) -> bool {
    s.style == Style::Plain && s.value == "<<"
}

/// Key lookup that stays allocation-light for the small mappings that make
/// up almost every pipeline, and switches to hashing once a mapping grows
/// (`jobs:` with 10k keys), so duplicate detection stays linear.
enum Seen {
    Small(Vec<(String, Span)>),
    Large(HashMap<String, Span>),
}

impl Seen {
    const SMALL: usize = 16;

    fn new() -> Self {
        Seen::Small(Vec::new())
    }

    fn from_names(names: &[&str]) -> Self {
        let mut s = Self::new();
        for n in names {
            s.insert(n, Span::default());
        }
        s
    }

    fn contains(&self, name: &str) -> bool {
        match self {
            Seen::Small(v) => v.iter().any(|(n, _)| n == name),
            Seen::Large(m) => m.contains_key(name),
        }
    }

    /// Inserts unless present; returns the earlier span if it was.
    fn insert(&mut self, name: &str, span: Span) -> Option<Span> {
        match self {
            Seen::Small(v) => {
                if let Some((_, s)) = v.iter().find(|(n, _)| n == name) {
                    return Some(*s);
                }
                v.push((name.to_owned(), span));
                if v.len() > Self::SMALL {
                    *self = Seen::Large(std::mem::take(v).into_iter().collect());
                }
                None
            }
            Seen::Large(m) => match m.get(name) {
                Some(s) => Some(*s),
                None => {
                    m.insert(name.to_owned(), span);
                    None
                }
            },
        }
    }
}
