//! `strategy: { matrix: { dim: [..], include: [..], exclude: [..] } }`.

use super::Decoder;
use super::value::to_json;
use crate::ast::Matrix;
use crate::diagnostic::Diagnostic;
use crate::yaml::{Node, NodeKind};

type Combo = Vec<(String, serde_json::Value)>;

impl Decoder {
    /// Decodes `strategy:`; `None` if it has no (valid) matrix.
    pub(super) fn strategy(&mut self, node: &Node) -> Option<Matrix> {
        let entries = self.mapping(node, "strategy")?;
        let mut matrix = None;
        for e in entries {
            match e.key.name.as_str() {
                "matrix" => matrix = self.matrix(&e.value),
                _ => self.unknown_field(&e.key, "`strategy`", &["matrix"]),
            }
        }
        matrix
    }

    fn matrix(&mut self, node: &Node) -> Option<Matrix> {
        let entries = self.mapping(node, "strategy.matrix")?;
        let mut m = Matrix {
            span: node.span,
            ..Matrix::default()
        };
        for e in entries {
            let v = &e.value;
            match e.key.name.as_str() {
                "include" => m.include = self.combos(v, "strategy.matrix.include"),
                "exclude" => m.exclude = self.combos(v, "strategy.matrix.exclude"),
                name => {
                    let NodeKind::Sequence(items) = &v.kind else {
                        self.wrong_type(v, "a list of values", &format!("strategy.matrix.{name}"));
                        continue;
                    };
                    if items.is_empty() {
                        self.push(
                            Diagnostic::error(
                                "empty-matrix",
                                v.span,
                                format!("matrix dimension `{name}` has no values"),
                            )
                            .with_help("list at least one value or remove the dimension"),
                        );
                        continue;
                    }
                    m.dimensions
                        .push((name.to_owned(), items.iter().map(to_json).collect()));
                }
            }
        }
        Some(m)
    }

    fn combos(&mut self, node: &Node, field: &str) -> Vec<Combo> {
        let NodeKind::Sequence(items) = &node.kind else {
            self.wrong_type(node, "a list of mappings", field);
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| match &item.kind {
                NodeKind::Mapping(entries) => Some(
                    entries
                        .iter()
                        .map(|e| (e.key.name.clone(), to_json(&e.value)))
                        .collect(),
                ),
                _ => {
                    self.wrong_type(item, "a mapping", field);
                    None
                }
            })
            .collect()
    }
}
