//! `kiln run --json`: exactly one JSON object per event per line on stdout,
//! and nothing else there.

use std::io::{Stdout, Write};

use kiln_engine::Event;

/// Writes events as JSON lines.
pub(crate) struct JsonReporter {
    out: Stdout,
    /// Set once stdout is closed (`| head`): stop writing, keep running.
    closed: bool,
}

impl JsonReporter {
    /// A reporter on stdout.
    pub(crate) fn new() -> Self {
        Self {
            out: std::io::stdout(),
            closed: false,
        }
    }

    /// Writes one line and flushes it, so consumers see events live.
    pub(crate) fn report(&mut self, event: &Event) {
        if self.closed {
            return;
        }
        let Ok(mut line) = serde_json::to_string(event) else {
            return;
        };
        line.push('\n');
        let mut out = self.out.lock();
        if out
            .write_all(line.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            self.closed = true;
        }
    }
}
