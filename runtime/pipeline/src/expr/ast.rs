//! The expression tree. Private to the expression module: other crates see
//! only [`super::Expr`].

use std::ops::Range;

/// A node with the byte range of the text it came from.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Node {
    pub kind: Kind,
    pub span: Range<usize>,
    /// Height of the subtree, kept so nesting is capped while building
    /// instead of overflowing the stack while evaluating.
    pub depth: u16,
}

/// What a node is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    Null,
    Bool(bool),
    Number(f64),
    Str(String),
    /// A top-level name: `env`, `secrets`, …
    Context(String),
    /// `base.name`
    Property(Box<Node>, String),
    /// `base[index]`
    Index(Box<Node>, Box<Node>),
    /// `base.*` or `base[*]`
    Star(Box<Node>),
    Not(Box<Node>),
    Compare(Cmp, Box<Node>, Box<Node>),
    /// `a && b && c`, flattened so long chains do not nest.
    And(Vec<Node>),
    /// `a || b || c`, flattened likewise.
    Or(Vec<Node>),
    Call(Func, Vec<Node>),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The built-in functions. Names are matched case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Func {
    Contains,
    StartsWith,
    EndsWith,
    Format,
    Join,
    ToJson,
    FromJson,
    HashFiles,
    Success,
    Failure,
    Always,
    Cancelled,
}

/// Every function: its canonical spelling and its arity bounds
/// (`usize::MAX` = variadic).
pub(super) const FUNCTIONS: &[(Func, &str, usize, usize)] = &[
    (Func::Contains, "contains", 2, 2),
    (Func::StartsWith, "startsWith", 2, 2),
    (Func::EndsWith, "endsWith", 2, 2),
    (Func::Format, "format", 1, usize::MAX),
    (Func::Join, "join", 1, 2),
    (Func::ToJson, "toJSON", 1, 1),
    (Func::FromJson, "fromJSON", 1, 1),
    (Func::HashFiles, "hashFiles", 1, usize::MAX),
    (Func::Success, "success", 0, 0),
    (Func::Failure, "failure", 0, 0),
    (Func::Always, "always", 0, 0),
    (Func::Cancelled, "cancelled", 0, 0),
];

impl Node {
    /// Calls `visit` on this node and every node below it, parents first.
    pub(super) fn walk<'n>(&'n self, visit: &mut dyn FnMut(&'n Node)) {
        visit(self);
        match &self.kind {
            Kind::Property(base, _) | Kind::Star(base) | Kind::Not(base) => base.walk(visit),
            Kind::Index(base, index) | Kind::Compare(_, base, index) => {
                base.walk(visit);
                index.walk(visit);
            }
            Kind::And(items) | Kind::Or(items) | Kind::Call(_, items) => {
                items.iter().for_each(|n| n.walk(visit));
            }
            Kind::Null | Kind::Bool(_) | Kind::Number(_) | Kind::Str(_) | Kind::Context(_) => {}
        }
    }
}
