//! Matrix expansion: cartesian product, `exclude`, then `include`, with
//! GitHub Actions semantics.

use serde_json::Value;

use crate::ast::Matrix;
use crate::diagnostic::Diagnostic;

/// Most instances one matrix job may expand to.
pub(crate) const MAX_COMBINATIONS: usize = 256;

/// One combination, keys in declaration order (dimensions, then keys that
/// `include` added).
pub(crate) type Combination = Vec<(String, Value)>;

/// Expands `matrix`, or explains why it cannot be.
///
/// - `exclude` entries remove every combination that matches all of their
///   key/value pairs (partial matches allowed);
/// - each `include` entry extends every combination whose *original*
///   dimension values it does not contradict; if it extends none, it is
///   added as a combination of its own.
pub(crate) fn expand(matrix: &Matrix, job: &str) -> Result<Vec<Combination>, Diagnostic> {
    let product = matrix
        .dimensions
        .iter()
        .fold(1usize, |acc, (_, values)| acc.saturating_mul(values.len()));
    let too_large = |n: &dyn std::fmt::Display| {
        Diagnostic::error(
            "matrix-too-large",
            matrix.span,
            format!(
                "the matrix of job `{job}` expands to {n} jobs; the limit is {MAX_COMBINATIONS}"
            ),
        )
        .with_help("split the job or exclude combinations")
    };
    if product > MAX_COMBINATIONS {
        return Err(too_large(&product));
    }
    let mut combos: Vec<Combination> = vec![Vec::new()];
    if !matrix.dimensions.is_empty() {
        for (name, values) in &matrix.dimensions {
            combos = combos
                .iter()
                .flat_map(|c| {
                    values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.push((name.clone(), v.clone()));
                        c
                    })
                })
                .collect();
        }
        combos.retain(|c| !matrix.exclude.iter().any(|ex| matches(c, ex)));
    } else {
        combos.clear();
    }
    let originals = combos.len();
    let is_dimension = |k: &str| matrix.dimensions.iter().any(|(n, _)| n == k);
    for entry in &matrix.include {
        let mut extended = false;
        for combo in combos.iter_mut().take(originals) {
            let contradicts = entry
                .iter()
                .any(|(k, v)| is_dimension(k) && get(combo, k).is_some_and(|cv| cv != v));
            if !contradicts {
                for (k, v) in entry {
                    set(combo, k, v);
                }
                extended = true;
            }
        }
        if !extended {
            combos.push(entry.clone());
        }
    }
    if combos.len() > MAX_COMBINATIONS {
        return Err(too_large(&combos.len()));
    }
    if combos.is_empty() {
        return Err(Diagnostic::error(
            "empty-matrix",
            matrix.span,
            format!("the matrix of job `{job}` has no combinations left"),
        )
        .with_help("`exclude` removes every combination; loosen it or add `include` entries"));
    }
    Ok(combos)
}

/// `test (os=linux, shard=1)`: the unique name of one instance.
pub(crate) fn instance_name(key: &str, combo: &Combination) -> String {
    if combo.is_empty() {
        return key.to_owned();
    }
    let parts: Vec<String> = combo
        .iter()
        .map(|(k, v)| format!("{k}={}", display(v)))
        .collect();
    format!("{key} ({})", parts.join(", "))
}

/// Strings bare, everything else as JSON.
fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn get<'c>(combo: &'c Combination, key: &str) -> Option<&'c Value> {
    combo.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn set(combo: &mut Combination, key: &str, value: &Value) {
    match combo.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value.clone(),
        None => combo.push((key.to_owned(), value.clone())),
    }
}

fn matches(combo: &Combination, pattern: &Combination) -> bool {
    pattern.iter().all(|(k, v)| get(combo, k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matrix(dims: &[(&str, Vec<Value>)]) -> Matrix {
        Matrix {
            dimensions: dims
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.clone()))
                .collect(),
            ..Matrix::default()
        }
    }

    fn combo(pairs: &[(&str, Value)]) -> Combination {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    fn names(m: &Matrix) -> Vec<String> {
        expand(m, "t")
            .unwrap()
            .iter()
            .map(|c| instance_name("t", c))
            .collect()
    }

    #[test]
    fn cartesian_product_in_declaration_order() {
        let m = matrix(&[
            ("os", vec![json!("linux"), json!("mac")]),
            ("n", vec![json!(1), json!(2)]),
        ]);
        assert_eq!(
            names(&m),
            [
                "t (os=linux, n=1)",
                "t (os=linux, n=2)",
                "t (os=mac, n=1)",
                "t (os=mac, n=2)"
            ]
        );
    }

    #[test]
    fn exclude_partial_match_and_include_extends_or_adds() {
        let mut m = matrix(&[
            ("os", vec![json!("linux"), json!("mac")]),
            ("n", vec![json!(1), json!(2)]),
        ]);
        m.exclude = vec![combo(&[("os", json!("mac")), ("n", json!(2))])];
        m.include = vec![
            combo(&[("os", json!("linux")), ("extra", json!(true))]),
            combo(&[("os", json!("windows")), ("n", json!(1))]),
        ];
        assert_eq!(
            names(&m),
            [
                "t (os=linux, n=1, extra=true)",
                "t (os=linux, n=2, extra=true)",
                "t (os=mac, n=1)",
                "t (os=windows, n=1)"
            ]
        );
    }

    #[test]
    fn include_only() {
        let m = Matrix {
            include: vec![combo(&[("a", json!("x"))])],
            ..Matrix::default()
        };
        assert_eq!(names(&m), ["t (a=x)"]);
    }

    #[test]
    fn too_large_is_checked_before_materializing() {
        let big: Vec<Value> = (0..1000).map(|i| json!(i)).collect();
        let m = matrix(&[("a", big.clone()), ("b", big.clone()), ("c", big)]);
        let d = expand(&m, "t").unwrap_err();
        assert_eq!(d.code, "matrix-too-large");
        assert_eq!(
            d.message,
            "the matrix of job `t` expands to 1000000000 jobs; the limit is 256"
        );
    }

    #[test]
    fn everything_excluded() {
        let mut m = matrix(&[("a", vec![json!(1)])]);
        m.exclude = vec![combo(&[("a", json!(1))])];
        let d = expand(&m, "t").unwrap_err();
        assert_eq!(d.code, "empty-matrix");
        assert_eq!(d.message, "the matrix of job `t` has no combinations left");
    }
}
