//! Reporters: the only code that prints a run. Each consumes the engine's
//! [`Event`] stream.

mod json;
mod summary;
mod terminal;

use kiln_engine::Event;

pub(crate) use json::JsonReporter;
pub(crate) use terminal::TerminalReporter;

/// The reporter chosen on the command line.
pub(crate) enum Reporter {
    /// Human view (`kiln run`).
    Terminal(TerminalReporter),
    /// One JSON object per event (`kiln run --json`).
    Json(JsonReporter),
}

impl Reporter {
    /// Shows one event.
    pub(crate) fn report(&mut self, event: &Event) {
        match self {
            Self::Terminal(r) => r.report(event),
            Self::Json(r) => r.report(event),
        }
    }

    /// Tells the user that cancellation has begun (first Ctrl-C) or that
    /// steps are now being killed (second).
    pub(crate) fn notice(&mut self, text: &str) {
        match self {
            Self::Terminal(r) => r.notice(text),
            // stdout is reserved for events; people watching --json read stderr.
            Self::Json(_) => eprintln!("{text}"),
        }
    }

    /// Writes what the events since the last call showed: once per burst
    /// of events, not once per line.
    pub(crate) fn flush(&mut self) {
        match self {
            Self::Terminal(r) => r.flush(),
            Self::Json(r) => r.flush(),
        }
    }

    /// Clears any live display and writes what is pending (the run ended
    /// without `RunFinished`).
    pub(crate) fn close(&mut self) {
        match self {
            Self::Terminal(r) => r.close(),
            Self::Json(r) => r.flush(),
        }
    }
}
