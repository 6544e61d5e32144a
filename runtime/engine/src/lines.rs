//! Raw output bytes → masked lines.
//!
//! Masking works on whole lines, so a secret written in pieces
//! (`printf ab; printf cd`) is masked once the line is complete.

use crate::mask::Masker;

/// Longest line kept before it is flushed without a newline. A secret that
/// straddles this cut in one unbroken 64 KiB line can escape masking; the
/// reference documents the limit.
const MAX_LINE: usize = 64 * 1024;

/// Splits one stream's bytes into masked lines.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Adds bytes; calls `emit` for every completed line.
    pub(crate) fn push(&mut self, bytes: &[u8], masker: &Masker, mut emit: impl FnMut(String)) {
        let mut rest = bytes;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            self.pending.extend_from_slice(&rest[..newline]);
            emit(self.take(masker));
            rest = &rest[newline + 1..];
        }
        self.pending.extend_from_slice(rest);
        while self.pending.len() >= MAX_LINE {
            let tail = self.pending.split_off(MAX_LINE);
            emit(self.take(masker));
            self.pending = tail;
        }
    }

    /// Flushes a last line without a newline.
    pub(crate) fn finish(&mut self, masker: &Masker, mut emit: impl FnMut(String)) {
        if !self.pending.is_empty() {
            emit(self.take(masker));
        }
    }

    fn take(&mut self, masker: &Masker) -> String {
        let mut line = std::mem::take(&mut self.pending);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let text = String::from_utf8_lossy(&line);
        masker.mask(&text).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(chunks: &[&str], secrets: &[&str]) -> Vec<String> {
        let masker = Masker::new(secrets.iter().copied());
        let mut splitter = LineSplitter::default();
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.push(chunk.as_bytes(), &masker, |l| out.push(l));
        }
        splitter.finish(&masker, |l| out.push(l));
        out
    }

    #[test]
    fn joins_chunks_into_lines_and_keeps_the_last_partial_line() {
        assert_eq!(lines(&["a", "b\nc\r\n", "d"], &[]), ["ab", "c", "d"]);
    }

    #[test]
    fn masks_a_secret_written_in_two_pieces() {
        assert_eq!(lines(&["tok: hun", "ter2\n"], &["hunter2"]), ["tok: ***"]);
    }

    #[test]
    fn flushes_an_overlong_line() {
        let long = "x".repeat(MAX_LINE + 10);
        let out = lines(&[&long], &[]);
        assert_eq!(out.iter().map(String::len).sum::<usize>(), MAX_LINE + 10);
        assert_eq!(out.len(), 2);
    }
}
