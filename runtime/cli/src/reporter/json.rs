//! `kiln run --json`: exactly one JSON object per event per line on stdout,
//! and nothing else there.

use std::io::{Stdout, Write};

use kiln_engine::Event;

/// Writes events as JSON lines.
pub(crate) struct JsonReporter {
    out: Stdout,
    /// Lines not yet written: written together by [`JsonReporter::flush`]
    /// after each burst of events.
    pending: String,
    /// Set once stdout is closed (`| head`): stop writing, keep running.
    closed: bool,
}

impl JsonReporter {
    /// A reporter on stdout.
    pub(crate) fn new() -> Self {
        Self {
            out: std::io::stdout(),
            pending: String::new(),
            closed: false,
        }
    }

    /// Adds one line for the next [`JsonReporter::flush`].
    pub(crate) fn report(&mut self, event: &Event) {
        if self.closed {
            return;
        }
        let Ok(line) = serde_json::to_string(event) else {
            return;
        };
        self.pending.push_str(&line);
        self.pending.push('\n');
    }

    /// Writes and flushes what was reported since the last call, so
    /// consumers see events live.
    pub(crate) fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut out = self.out.lock();
        if out
            .write_all(self.pending.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            self.closed = true;
        }
        self.pending.clear();
    }
}
