//! Tokens → [`Node`] tree, by recursive descent in GitHub's precedence order:
//! `!` binds tightest, then `< <= > >=`, `== !=`, `&&`, `||`.
//!
//! Function names and arities are checked here so a typo is reported before
//! anything runs.

use std::ops::Range;

use super::ast::{Cmp, FUNCTIONS, Func, Kind, Node};
use super::lexer::{Tok, Token, tokenize};
use super::{ExprError, MAX_DEPTH, MAX_LEN, format_string};
use crate::suggest;

/// Parses a whole expression.
pub(super) fn parse(text: &str) -> Result<Node, ExprError> {
    if text.len() > MAX_LEN {
        return Err(ExprError {
            message: format!(
                "expression is {} bytes long; the limit is {MAX_LEN}",
                text.len()
            ),
            offset: 0..text.len(),
            help: Some("move long values into `env:` and refer to them".into()),
        });
    }
    let tokens = tokenize(text)?;
    let mut p = Parser {
        tokens: &tokens,
        pos: 0,
        end: text.len(),
        recursion: 0,
    };
    if tokens.is_empty() {
        return Err(ExprError {
            message: "empty expression".into(),
            offset: 0..text.len(),
            help: Some("write a value or a condition, e.g. `${{ matrix.os }}`".into()),
        });
    }
    let node = p.expression()?;
    match p.peek() {
        None => Ok(node),
        Some(t) => Err(p.unexpected(t, "expected an operator or the end of the expression")),
    }
}

struct Parser<'t> {
    tokens: &'t [Token<'t>],
    pos: usize,
    end: usize,
    recursion: usize,
}

fn too_deep(span: Range<usize>) -> ExprError {
    ExprError {
        message: format!("expression nests more than {MAX_DEPTH} levels deep"),
        offset: span,
        help: Some("split it into several steps or `env:` values".into()),
    }
}

/// Builds a node whose children are `children`, refusing trees taller than
/// [`MAX_DEPTH`].
fn node(kind: Kind, span: Range<usize>) -> Result<Node, ExprError> {
    let mut child_depth = 0u16;
    let mut note = |n: &Node| child_depth = child_depth.max(n.depth);
    match &kind {
        Kind::Property(b, _) | Kind::Star(b) | Kind::Not(b) => note(b),
        Kind::Index(a, b) | Kind::Compare(_, a, b) => {
            note(a);
            note(b);
        }
        Kind::And(items) | Kind::Or(items) | Kind::Call(_, items) => items.iter().for_each(note),
        _ => {}
    }
    if usize::from(child_depth) >= MAX_DEPTH {
        return Err(too_deep(span));
    }
    Ok(Node {
        kind,
        span,
        depth: child_depth + 1,
    })
}

impl<'t> Parser<'t> {
    fn peek(&self) -> Option<&'t Token<'t>> {
        self.tokens.get(self.pos)
    }

    fn next_is(&self, kind: &Tok<'_>) -> bool {
        self.peek().is_some_and(|t| &t.kind == kind)
    }

    fn bump(&mut self) -> Option<&'t Token<'t>> {
        let t = self.tokens.get(self.pos);
        self.pos += 1;
        t
    }

    fn unexpected(&self, t: &Token<'_>, what: &str) -> ExprError {
        ExprError {
            message: format!("unexpected {}: {what}", t.kind.describe()),
            offset: t.span.clone(),
            help: Some(SYNTAX_HELP.to_owned()),
        }
    }

    fn at_end(&self, what: &str) -> ExprError {
        ExprError {
            message: format!("unexpected end of expression: {what}"),
            offset: self.end..self.end,
            help: Some(SYNTAX_HELP.to_owned()),
        }
    }

    /// The next token, which must be `kind`.
    fn expect(&mut self, kind: &Tok<'_>, what: &str) -> Result<&'t Token<'t>, ExprError> {
        match self.bump() {
            Some(t) if &t.kind == kind => Ok(t),
            Some(t) => Err(self.unexpected(t, what)),
            None => Err(self.at_end(what)),
        }
    }

    /// Guards the parser's own recursion (parentheses, `!`, arguments), which
    /// can be deeper than the tree it builds: `((((x))))` is one node.
    fn enter(&mut self, span: Range<usize>) -> Result<(), ExprError> {
        self.recursion += 1;
        if self.recursion > MAX_DEPTH {
            return Err(too_deep(span));
        }
        Ok(())
    }

    fn expression(&mut self) -> Result<Node, ExprError> {
        let at = self.peek().map_or(self.end..self.end, |t| t.span.clone());
        self.enter(at)?;
        let node = self.chain(&Tok::Or, Self::and, Kind::Or);
        self.recursion -= 1;
        node
    }

    fn and(&mut self) -> Result<Node, ExprError> {
        self.chain(&Tok::And, Self::equality, Kind::And)
    }

    /// `operand (op operand)*` flattened into one n-ary node.
    fn chain(
        &mut self,
        op: &Tok<'_>,
        operand: fn(&mut Self) -> Result<Node, ExprError>,
        build: fn(Vec<Node>) -> Kind,
    ) -> Result<Node, ExprError> {
        let first = operand(self)?;
        if !self.next_is(op) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.next_is(op) {
            self.pos += 1;
            items.push(operand(self)?);
        }
        let span = items[0].span.start..items[items.len() - 1].span.end;
        node(build(items), span)
    }

    fn equality(&mut self) -> Result<Node, ExprError> {
        self.binary(Self::relational, |t| match t {
            Tok::Eq => Some(Cmp::Eq),
            Tok::Ne => Some(Cmp::Ne),
            _ => None,
        })
    }

    fn relational(&mut self) -> Result<Node, ExprError> {
        self.binary(Self::unary, |t| match t {
            Tok::Lt => Some(Cmp::Lt),
            Tok::Le => Some(Cmp::Le),
            Tok::Gt => Some(Cmp::Gt),
            Tok::Ge => Some(Cmp::Ge),
            _ => None,
        })
    }

    fn binary(
        &mut self,
        operand: fn(&mut Self) -> Result<Node, ExprError>,
        op: fn(&Tok<'_>) -> Option<Cmp>,
    ) -> Result<Node, ExprError> {
        let mut left = operand(self)?;
        while let Some(cmp) = self.peek().and_then(|t| op(&t.kind)) {
            self.pos += 1;
            let right = operand(self)?;
            let span = left.span.start..right.span.end;
            left = node(Kind::Compare(cmp, Box::new(left), Box::new(right)), span)?;
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        if let Some(t) = self.peek().filter(|t| t.kind == Tok::Not) {
            self.pos += 1;
            self.enter(t.span.clone())?;
            let operand = self.unary();
            self.recursion -= 1;
            let operand = operand?;
            let span = t.span.start..operand.span.end;
            return node(Kind::Not(Box::new(operand)), span);
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Node, ExprError> {
        let mut base = self.primary()?;
        loop {
            match self.peek().map(|t| &t.kind) {
                Some(Tok::Dot) => {
                    self.pos += 1;
                    base = self.property(base)?;
                }
                Some(Tok::LBracket) => {
                    self.pos += 1;
                    base = self.index(base)?;
                }
                _ => return Ok(base),
            }
        }
    }

    fn property(&mut self, base: Node) -> Result<Node, ExprError> {
        let what = "expected a property name after `.`";
        match self.bump() {
            Some(Token {
                kind: Tok::Ident(name),
                span,
            }) => {
                let span = base.span.start..span.end;
                node(Kind::Property(Box::new(base), (*name).to_owned()), span)
            }
            Some(Token {
                kind: Tok::Star,
                span,
            }) => {
                let span = base.span.start..span.end;
                node(Kind::Star(Box::new(base)), span)
            }
            // Keywords are fine as property names: `inputs.true`.
            Some(Token {
                kind: kind @ (Tok::Null | Tok::Bool(_)),
                span,
            }) => {
                let name = kind.describe().trim_matches('`').to_owned();
                let span = base.span.start..span.end;
                node(Kind::Property(Box::new(base), name), span)
            }
            Some(t) => {
                let mut e = self.unexpected(t, what);
                e.help = Some("use an index for other keys: `['1st']`".into());
                Err(e)
            }
            None => Err(self.at_end(what)),
        }
    }

    fn index(&mut self, base: Node) -> Result<Node, ExprError> {
        if self.next_is(&Tok::Star) {
            self.pos += 1;
            let close = self.expect(&Tok::RBracket, "expected `]`")?;
            let span = base.span.start..close.span.end;
            return node(Kind::Star(Box::new(base)), span);
        }
        let index = self.expression()?;
        let close = self.expect(&Tok::RBracket, "expected `]` to close the index")?;
        let span = base.span.start..close.span.end;
        node(Kind::Index(Box::new(base), Box::new(index)), span)
    }

    fn primary(&mut self) -> Result<Node, ExprError> {
        let what = "expected a value";
        let Some(t) = self.bump() else {
            return Err(self.at_end(what));
        };
        let span = t.span.clone();
        let kind = match &t.kind {
            Tok::Null => Kind::Null,
            Tok::Bool(b) => Kind::Bool(*b),
            Tok::Number(n) => Kind::Number(*n),
            Tok::Str(s) => Kind::Str(s.to_string()),
            Tok::Ident(name) if self.next_is(&Tok::LParen) => return self.call(name, span),
            Tok::Ident(name) => Kind::Context((*name).to_owned()),
            Tok::LParen => {
                let inner = self.expression()?;
                self.expect(&Tok::RParen, "expected `)`")?;
                return Ok(inner);
            }
            _ => return Err(self.unexpected(t, what)),
        };
        node(kind, span)
    }

    fn call(&mut self, name: &str, name_span: Range<usize>) -> Result<Node, ExprError> {
        let Some(&(func, canonical, min, max)) = FUNCTIONS
            .iter()
            .find(|(_, n, _, _)| n.eq_ignore_ascii_case(name))
        else {
            let names = FUNCTIONS.iter().map(|f| f.1);
            return Err(ExprError {
                message: format!("unknown function `{name}`"),
                offset: name_span,
                help: suggest::help(name, names.clone(), || {
                    Some(format!(
                        "available functions: {}",
                        names.collect::<Vec<_>>().join(", ")
                    ))
                }),
            });
        };
        self.pos += 1; // `(`
        let mut args = Vec::new();
        if !self.next_is(&Tok::RParen) {
            loop {
                args.push(self.expression()?);
                if !self.next_is(&Tok::Comma) {
                    break;
                }
                self.pos += 1;
            }
        }
        let close = self.expect(&Tok::RParen, "expected `,` or `)` after an argument")?;
        let span = name_span.start..close.span.end;
        if args.len() < min || args.len() > max {
            return Err(ExprError {
                message: format!(
                    "`{canonical}` takes {}, got {}",
                    arity(min, max),
                    args.len()
                ),
                offset: span,
                help: Some(format!("call it as `{canonical}({})`", signature(func))),
            });
        }
        if func == Func::Format {
            check_format(&args)?;
        }
        node(Kind::Call(func, args), span)
    }
}

/// What a `${{ }}` expression may hold, for syntax errors.
pub(crate) const SYNTAX_HELP: &str = "an expression is literals ('text', 42, true, null), contexts \
     (`env.NAME`, `needs.job.outputs.key`), operators (== != < > <= >= && || !) and \
     function calls like `contains(a, b)`; strings take single quotes";

/// The arguments of `func`, for an arity error.
fn signature(func: Func) -> &'static str {
    match func {
        Func::Contains => "haystack, needle",
        Func::StartsWith | Func::EndsWith => "text, part",
        Func::Format => "'{0} and {1}', a, b",
        Func::Join => "list, ', '",
        Func::ToJson | Func::FromJson => "value",
        Func::HashFiles => "'pattern', 'more patterns'",
        Func::Success | Func::Failure | Func::Always | Func::Cancelled => "",
    }
}

fn arity(min: usize, max: usize) -> String {
    let n = |k: usize| match k {
        1 => "1 argument".to_owned(),
        k => format!("{k} arguments"),
    };
    match (min, max) {
        (a, b) if a == b => n(a),
        (a, usize::MAX) => format!("at least {}", n(a)),
        (a, b) => format!("{a} or {}", n(b)),
    }
}

/// A literal format string is checked now rather than at run time.
fn check_format(args: &[Node]) -> Result<(), ExprError> {
    if let Kind::Str(fmt) = &args[0].kind {
        format_string::check(fmt, args.len() - 1).map_err(|message| ExprError {
            message,
            offset: args[0].span.clone(),
            help: Some("placeholders are `{0}`, `{1}`, …; write `{{` and `}}` for braces".into()),
        })?;
    }
    Ok(())
}
