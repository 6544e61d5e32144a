//! The table printed when a run ends: job, result, duration, attempts.

use std::time::Duration;

use crate::command::runs::status_style;
use crate::style::Palette;
use crate::units;

/// One job's line in the summary.
#[derive(Debug, Clone)]
pub(super) struct Row {
    pub name: String,
    pub result: String,
    pub duration: Option<Duration>,
    pub attempts: u32,
    pub reason: Option<String>,
}

/// Renders the table, one line per job, header first.
pub(super) fn table(rows: &[Row], palette: Palette) -> Vec<String> {
    let width = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(3);
    let mut lines = vec![format!(
        "{:<width$}  {:<11}  {:>8}  {:>8}",
        "JOB", "RESULT", "DURATION", "ATTEMPTS"
    )];
    for row in rows {
        let result = palette.paint(status_style(&row.result), &format!("{:<11}", row.result));
        let duration = row.duration.map_or_else(|| "-".to_owned(), units::duration);
        let mut line = format!(
            "{:<width$}  {result}  {duration:>8}  {:>8}",
            row.name, row.attempts
        );
        if let Some(reason) = &row.reason {
            line.push_str("  ");
            line.push_str(&palette.paint(crate::style::dim(), reason));
        }
        lines.push(line);
    }
    lines
}
