//! `kiln plan`: the plan as text, JSON, Graphviz dot or Mermaid.

use std::fmt::Write;

use kiln_pipeline::{JobId, Plan};

use crate::args::PlanFormat;

/// Renders `plan` in `format`, ending with a newline.
pub(crate) fn render(plan: &Plan, format: PlanFormat) -> String {
    match format {
        PlanFormat::Text => text(plan),
        PlanFormat::Json => {
            let mut out = serde_json::to_string_pretty(&json(plan)).unwrap_or_default();
            out.push('\n');
            out
        }
        PlanFormat::Dot => dot(plan),
        PlanFormat::Mermaid => mermaid(plan),
    }
}

fn name(plan: &Plan, id: JobId) -> &str {
    plan.jobs.get(id.0).map_or("?", |j| j.name.as_str())
}

fn names(plan: &Plan, ids: &[JobId]) -> Vec<String> {
    ids.iter().map(|&id| name(plan, id).to_owned()).collect()
}

fn text(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} {}, {} {}",
        plan.name,
        plan.jobs.len(),
        plural(plan.jobs.len(), "job", "jobs"),
        plan.levels.len(),
        plural(plan.levels.len(), "level", "levels"),
    );
    for (depth, level) in plan.levels.iter().enumerate() {
        let _ = writeln!(out, "\nlevel {}", depth + 1);
        for &id in level {
            let job = &plan.jobs[id.0];
            let needs = names(plan, &job.needs);
            if needs.is_empty() {
                let _ = writeln!(out, "  {}", job.name);
            } else {
                let _ = writeln!(out, "  {}  ← {}", job.name, needs.join(", "));
            }
        }
    }
    let _ = writeln!(
        out,
        "\ncritical path: {}",
        names(plan, &plan.critical_path).join(" → ")
    );
    out
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

fn json(plan: &Plan) -> serde_json::Value {
    let jobs: Vec<serde_json::Value> = plan
        .jobs
        .iter()
        .map(|job| {
            serde_json::json!({
                "id": job.id.0,
                "name": job.name,
                "key": job.key,
                "needs": names(plan, &job.needs),
                "steps": job.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let levels: Vec<Vec<String>> = plan.levels.iter().map(|l| names(plan, l)).collect();
    serde_json::json!({
        "name": plan.name,
        "jobs": jobs,
        "levels": levels,
        "critical_path": names(plan, &plan.critical_path),
    })
}

/// A DOT double-quoted string: `"` and `\` escaped, newlines as `\n`.
fn dot_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn dot(plan: &Plan) -> String {
    let mut out = format!("digraph {} {{\n", dot_quote(&plan.name));
    out.push_str("  rankdir=LR;\n  node [shape=box];\n");
    for job in &plan.jobs {
        let _ = writeln!(out, "  {};", dot_quote(&job.name));
    }
    for job in &plan.jobs {
        for &need in &job.needs {
            let _ = writeln!(
                out,
                "  {} -> {};",
                dot_quote(name(plan, need)),
                dot_quote(&job.name)
            );
        }
    }
    out.push_str("}\n");
    out
}

/// A Mermaid node label: quoted, with `"` and markup characters as entities.
fn mermaid_label(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '#' => out.push_str("#35;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn mermaid(plan: &Plan) -> String {
    // Node ids are synthetic (`j0`): job names may hold anything.
    let mut out = String::from("graph TD\n");
    for job in &plan.jobs {
        let _ = writeln!(out, "  j{}[{}]", job.id.0, mermaid_label(&job.name));
    }
    for job in &plan.jobs {
        for need in &job.needs {
            let _ = writeln!(out, "  j{} --> j{}", need.0, job.id.0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(dot_quote(r#"a "b" \ c"#), r#""a \"b\" \\ c""#);
        assert_eq!(
            mermaid_label("test (x=\"1\") <b>"),
            "\"test (x=#quot;1#quot;) #lt;b#gt;\""
        );
    }
}
