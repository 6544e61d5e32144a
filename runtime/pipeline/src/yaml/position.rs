//! Converts saphyr's character-based markers into [`Span`]s with byte offsets.
//!
//! saphyr counts characters; diagnostics need byte offsets (to slice the
//! source) and 1-based line/column (to show the user). One table of line
//! starts, built in a single pass, answers both in `O(log lines + col)`.

use std::cell::Cell;

use crate::source::Span;

/// Line starts of one source text, in characters and bytes.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    /// `(char index, byte offset)` of the first character of each line.
    lines: Vec<(usize, usize)>,
    /// With pure ASCII, character index == byte offset and the per-line walk
    /// is skipped.
    ascii: bool,
    /// The line of the last lookup: parser events arrive in source order,
    /// so the next lookup is almost always on this line or just after it.
    cursor: Cell<usize>,
}

impl<'a> LineIndex<'a> {
    /// Indexes `text`.
    pub(crate) fn new(text: &'a str) -> Self {
        let mut lines = vec![(0, 0)];
        let ascii = text.is_ascii();
        if ascii {
            for (byte, b) in text.bytes().enumerate() {
                if b == b'\n' {
                    lines.push((byte + 1, byte + 1));
                }
            }
        } else {
            for (chars, (byte, c)) in text.char_indices().enumerate() {
                if c == '\n' {
                    lines.push((chars + 1, byte + 1));
                }
            }
        }
        Self {
            text,
            lines,
            ascii,
            cursor: Cell::new(0),
        }
    }

    /// Byte offset, 1-based line and 1-based column of a character index.
    fn locate(&self, char_index: usize) -> (usize, u32, u32) {
        let line = self.line_of(char_index);
        let (line_char, line_byte) = self.lines[line];
        let col_chars = char_index - line_char;
        let byte = if self.ascii {
            char_index.min(self.text.len())
        } else {
            self.text[line_byte..]
                .char_indices()
                .nth(col_chars)
                .map_or(self.text.len(), |(b, _)| line_byte + b)
        };
        (byte, to_u32(line + 1), to_u32(col_chars + 1))
    }

    /// The 0-based line holding `char_index`: a short forward walk from
    /// the previous answer, or a binary search when jumping back or far.
    fn line_of(&self, char_index: usize) -> usize {
        let mut line = self.cursor.get();
        if self.lines[line].0 > char_index {
            line = self.lines.partition_point(|&(c, _)| c <= char_index).max(1) - 1;
        } else {
            let mut steps = 0;
            while line + 1 < self.lines.len() && self.lines[line + 1].0 <= char_index {
                line += 1;
                steps += 1;
                if steps == 8 {
                    line = self.lines.partition_point(|&(c, _)| c <= char_index).max(1) - 1;
                    break;
                }
            }
        }
        self.cursor.set(line);
        line
    }

    /// A span from character index `start` to `end` (exclusive).
    pub(crate) fn span(&self, start: usize, end: usize) -> Span {
        let (start_byte, line, col) = self.locate(start);
        let end_byte = if end <= start {
            start_byte
        } else {
            self.locate(end).0
        };
        Span {
            start: start_byte,
            end: end_byte,
            line,
            col,
        }
    }

    /// A span covering the bytes `start..end`, which must lie on char
    /// boundaries of the source (used to point inside a scalar).
    pub(crate) fn byte_span(&self, start: usize, end: usize) -> Span {
        let start = start.min(self.text.len());
        let line = self.lines.partition_point(|&(_, b)| b <= start).max(1) - 1;
        let line_byte = self.lines[line].1;
        let col = self
            .text
            .get(line_byte..start)
            .map_or(0, |s| s.chars().count());
        Span {
            start,
            end: end.clamp(start, self.text.len()),
            line: to_u32(line + 1),
            col: to_u32(col + 1),
        }
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_positions() {
        let idx = LineIndex::new("ab\ncd\n");
        assert_eq!(
            idx.span(4, 5),
            Span {
                start: 4,
                end: 5,
                line: 2,
                col: 2
            }
        );
    }

    #[test]
    fn utf8_columns_count_chars_offsets_count_bytes() {
        // `é` is two bytes: the `x` after it is char 1, byte 2.
        let idx = LineIndex::new("éx\nüy");
        assert_eq!(
            idx.span(1, 2),
            Span {
                start: 2,
                end: 3,
                line: 1,
                col: 2
            }
        );
        assert_eq!(
            idx.span(4, 5),
            Span {
                start: 6,
                end: 7,
                line: 2,
                col: 2
            }
        );
        assert_eq!(idx.byte_span(6, 7), idx.span(4, 5));
    }
}
