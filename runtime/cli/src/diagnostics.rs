//! Rendering pipeline diagnostics: miette code frames for people, a JSON
//! array for programs.

use std::fmt;

use kiln_pipeline::{Diagnostic, Severity, SourceFile};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};

use crate::style::Palette;

/// Renders every diagnostic as `file:line:col`, the message, a code frame
/// with a label under the span, and `help:`.
pub(crate) fn render(source: &SourceFile, diagnostics: &[Diagnostic], palette: Palette) -> String {
    let theme = if palette.enabled() {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_links(false)
        .with_urls(false);
    let named = NamedSource::new(source.name.clone(), source.text.clone());
    let mut out = String::new();
    for diagnostic in diagnostics {
        let report = Report {
            diagnostic,
            source: &named,
        };
        if handler.render_report(&mut out, &report).is_err() {
            // Rendering only fails on a formatter error; fall back to one line.
            out.push_str(&one_line(source, diagnostic));
        }
        out.push('\n');
    }
    out
}

/// `file:line:col: severity[code]: message`, for places a frame does not fit.
pub(crate) fn one_line(source: &SourceFile, d: &Diagnostic) -> String {
    format!(
        "{}:{}:{}: {}[{}]: {}\n",
        source.name,
        d.span.line,
        d.span.col,
        severity_name(d.severity),
        d.code,
        d.message
    )
}

/// The `kiln validate --json` document: one array with every diagnostic.
pub(crate) fn json(source: &SourceFile, diagnostics: &[Diagnostic]) -> serde_json::Value {
    diagnostics
        .iter()
        .map(|d| {
            serde_json::json!({
                "code": d.code,
                "severity": severity_name(d.severity),
                "message": d.message,
                "file": source.name,
                "line": d.span.line,
                "col": d.span.col,
                "label": d.label,
                "help": d.help,
            })
        })
        .collect()
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// Adapts a kiln diagnostic to miette's trait, borrowing everything.
struct Report<'a> {
    diagnostic: &'a Diagnostic,
    source: &'a NamedSource<std::sync::Arc<str>>,
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diagnostic, f)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.diagnostic.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.diagnostic.span;
        let len = span.end.saturating_sub(span.start);
        Some(Box::new(std::iter::once(
            LabeledSpan::new_primary_with_span(self.diagnostic.label.clone(), (span.start, len)),
        )))
    }
}
