//! Whether and how to colour output: only on a terminal, and never when
//! `NO_COLOR` is set (<https://no-color.org>).

use std::io::IsTerminal;

use owo_colors::{AnsiColors, Style};

/// Colour decision for one output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Palette {
    enabled: bool,
}

impl Palette {
    /// Colours for stdout.
    pub(crate) fn stdout() -> Self {
        Self::new(std::io::stdout().is_terminal())
    }

    /// Colours for stderr.
    pub(crate) fn stderr() -> Self {
        Self::new(std::io::stderr().is_terminal())
    }

    fn new(terminal: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            enabled: terminal && !no_color,
        }
    }

    /// Whether colours are on.
    pub(crate) fn enabled(self) -> bool {
        self.enabled
    }

    /// `text` in `style`, or plain.
    pub(crate) fn paint(self, style: Style, text: &str) -> String {
        if self.enabled {
            style.style(text).to_string()
        } else {
            text.to_owned()
        }
    }

    /// A job's colour: derived from its name so it stays the same from run
    /// to run and with or without `--job`. Red is kept for failures.
    pub(crate) fn job_style(self, name: &str) -> Style {
        const COLORS: [AnsiColors; 6] = [
            AnsiColors::Cyan,
            AnsiColors::Magenta,
            AnsiColors::Yellow,
            AnsiColors::Blue,
            AnsiColors::Green,
            AnsiColors::BrightCyan,
        ];
        // FNV-1a: tiny, stable across Rust versions (unlike DefaultHasher).
        let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Style::new().color(COLORS[(hash % COLORS.len() as u64) as usize])
    }
}

/// Successful things.
pub(crate) fn good() -> Style {
    Style::new().green()
}

/// Failures.
pub(crate) fn bad() -> Style {
    Style::new().red().bold()
}

/// Secondary information (skips, durations).
pub(crate) fn dim() -> Style {
    Style::new().dimmed()
}

/// Warnings and retries.
pub(crate) fn warn() -> Style {
    Style::new().yellow()
}
