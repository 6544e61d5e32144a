//! The `$KILN_OUTPUT` file format: how a step hands outputs to later steps
//! and jobs.
//!
//! ```text
//! version=1.2.3
//! notes<<EOF
//! first line
//! second line
//! EOF
//! ```
//!
//! A `key=value` line sets `key` to everything after the first `=`; a
//! `key<<DELIM` line starts a multi-line value that ends at the first line
//! that is exactly `DELIM`. Blank lines are ignored, CRLF line endings are
//! accepted, and a key written twice keeps its first position with the last
//! value (a step may append to the file as it goes).

/// Why a `$KILN_OUTPUT` file was rejected. Lines are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OutputFileError {
    /// A non-blank line that is neither `key=value` nor `key<<DELIM`.
    #[error("line {line}: expected `key=value` or `key<<DELIMITER`, found `{text}`")]
    InvalidLine {
        /// Line number.
        line: usize,
        /// The line as written (without its line ending).
        text: String,
    },
    /// The name before `=` or `<<` is not a valid output name.
    #[error(
        "line {line}: invalid output name `{key}`: use letters, digits, `_` and `-`, starting with a letter or `_`"
    )]
    InvalidKey {
        /// Line number.
        line: usize,
        /// The name as written.
        key: String,
    },
    /// `key<<` with nothing after it.
    #[error("line {line}: missing heredoc delimiter after `{key}<<` (write e.g. `{key}<<EOF`)")]
    EmptyDelimiter {
        /// Line number.
        line: usize,
        /// The output name.
        key: String,
    },
    /// The file ended before the heredoc's closing delimiter.
    #[error(
        "line {line}: heredoc for `{key}` is never closed: end it with a line containing only `{delimiter}`"
    )]
    UnterminatedHeredoc {
        /// Line of the `key<<DELIM` opener.
        line: usize,
        /// The output name.
        key: String,
        /// The expected closing delimiter.
        delimiter: String,
    },
}

/// Parses a step's `$KILN_OUTPUT` file: `key=value` lines and the heredoc form
/// `key<<DELIM` … `DELIM` (multi-line value, any delimiter). Later keys win.
///
/// Returns outputs in the order their keys first appear. Keys match
/// `[A-Za-z_][A-Za-z0-9_-]*`; a heredoc value is the lines between opener and
/// delimiter joined with `\n`, without a trailing newline. The delimiter is
/// compared exactly (no trimming), apart from a `\r` line ending.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, OutputFileError> {
    let mut outputs = Outputs::default();
    let mut lines = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .enumerate()
        .map(|(index, line)| (index + 1, line));
    while let Some((number, line)) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        match split(line) {
            Some(Line::Value(key, value)) => {
                check_key(number, key)?;
                outputs.set(key, value.to_owned());
            }
            Some(Line::Heredoc(key, delimiter)) => {
                check_key(number, key)?;
                if delimiter.is_empty() {
                    return Err(OutputFileError::EmptyDelimiter {
                        line: number,
                        key: key.to_owned(),
                    });
                }
                let mut body = Vec::new();
                let closed = lines.by_ref().any(|(_, l)| {
                    let end = l == delimiter;
                    if !end {
                        body.push(l);
                    }
                    end
                });
                if !closed {
                    return Err(OutputFileError::UnterminatedHeredoc {
                        line: number,
                        key: key.to_owned(),
                        delimiter: delimiter.to_owned(),
                    });
                }
                outputs.set(key, body.join("\n"));
            }
            None => {
                return Err(OutputFileError::InvalidLine {
                    line: number,
                    text: line.to_owned(),
                });
            }
        }
    }
    Ok(outputs.pairs)
}

/// One non-blank line, split at its separator.
enum Line<'a> {
    /// `key=value`
    Value(&'a str, &'a str),
    /// `key<<DELIM`
    Heredoc(&'a str, &'a str),
}

/// Splits at the first `=` or `<<`, whichever comes first, so `a=b<<c` is a
/// value and `a<<X=Y` a heredoc with delimiter `X=Y`.
fn split(line: &str) -> Option<Line<'_>> {
    let equals = line.find('=');
    let heredoc = line.find("<<");
    match (equals, heredoc) {
        (Some(e), Some(h)) if h < e => Some(Line::Heredoc(&line[..h], &line[h + 2..])),
        (Some(e), _) => Some(Line::Value(&line[..e], &line[e + 1..])),
        (None, Some(h)) => Some(Line::Heredoc(&line[..h], &line[h + 2..])),
        (None, None) => None,
    }
}

fn check_key(line: usize, key: &str) -> Result<(), OutputFileError> {
    let mut chars = key.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(OutputFileError::InvalidKey {
            line,
            key: key.to_owned(),
        })
    }
}

/// Outputs in first-appearance order; a repeated key overwrites in place.
/// Output files hold a handful of keys, so a linear lookup beats a map.
#[derive(Default)]
struct Outputs {
    pairs: Vec<(String, String)>,
}

impl Outputs {
    fn set(&mut self, key: &str, value: String) {
        match self.pairs.iter_mut().find(|(k, _)| k == key) {
            Some((_, old)) => *old = value,
            None => self.pairs.push((key.to_owned(), value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<(String, String)> {
        match parse(text) {
            Ok(pairs) => pairs,
            Err(e) => panic!("{text:?} failed: {e}"),
        }
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(pairs) => panic!("{text:?} parsed as {pairs:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_key_value_lines() {
        assert_eq!(
            ok("version=1.2.3\nname=kiln\n"),
            pairs(&[("version", "1.2.3"), ("name", "kiln")])
        );
    }

    #[test]
    fn empty_file_has_no_outputs() {
        assert_eq!(ok(""), pairs(&[]));
        assert_eq!(ok("\n\n  \n"), pairs(&[]));
    }

    #[test]
    fn value_is_everything_after_the_first_equals_verbatim() {
        assert_eq!(
            ok("query=a=b&c=d\nempty=\nspaced=  x  "),
            pairs(&[("query", "a=b&c=d"), ("empty", ""), ("spaced", "  x  ")])
        );
    }

    #[test]
    fn ignores_blank_lines() {
        assert_eq!(
            ok("\na=1\n   \n\t\r\nb=2\n\n"),
            pairs(&[("a", "1"), ("b", "2")])
        );
    }

    #[test]
    fn tolerates_crlf_line_endings() {
        assert_eq!(
            ok("a=1\r\nnotes<<EOF\r\none\r\ntwo\r\nEOF\r\nb=2\r"),
            pairs(&[("a", "1"), ("notes", "one\ntwo"), ("b", "2")])
        );
    }

    #[test]
    fn later_keys_win_in_first_appearance_order() {
        assert_eq!(
            ok("a=1\nb=2\na=3\nb<<X\nfour\nX\nc=5"),
            pairs(&[("a", "3"), ("b", "four"), ("c", "5")])
        );
    }

    #[test]
    fn parses_heredoc_values_without_a_trailing_newline() {
        assert_eq!(
            ok("notes<<EOF\nfirst line\n\n  indented = x\nEOF\nafter=1\n"),
            pairs(&[("notes", "first line\n\n  indented = x"), ("after", "1")])
        );
    }

    #[test]
    fn heredoc_accepts_any_delimiter_and_empty_bodies() {
        assert_eq!(
            ok("a<<ghadelimiter_8f1e\nx\nghadelimiter_8f1e\nb<<END\nEND"),
            pairs(&[("a", "x"), ("b", "")])
        );
        // Only a line that is exactly the delimiter ends the value.
        assert_eq!(
            ok("a<<EOF\n EOF\nEOF \nEOFx\nEOF"),
            pairs(&[("a", " EOF\nEOF \nEOFx")])
        );
        // A blank line inside a heredoc is part of the value.
        assert_eq!(ok("a<<EOF\n\nEOF"), pairs(&[("a", "")]));
        assert_eq!(ok("a<<EOF\n\n\nEOF"), pairs(&[("a", "\n")]));
    }

    #[test]
    fn the_first_separator_decides_the_form() {
        assert_eq!(ok("a=b<<c"), pairs(&[("a", "b<<c")]));
        assert_eq!(ok("a<<X=Y\nv\nX=Y"), pairs(&[("a", "v")]));
    }

    #[test]
    fn accepts_keys_with_underscores_digits_and_dashes() {
        assert_eq!(
            ok("_a=1\nA-b_2=2\nz9=3"),
            pairs(&[("_a", "1"), ("A-b_2", "2"), ("z9", "3")])
        );
    }

    #[test]
    fn rejects_a_line_without_separator_naming_its_line() {
        assert_eq!(
            err("a=1\n\njust text\n"),
            "line 3: expected `key=value` or `key<<DELIMITER`, found `just text`"
        );
        assert_eq!(
            parse("oops\r\n"),
            Err(OutputFileError::InvalidLine {
                line: 1,
                text: "oops".to_owned()
            })
        );
    }

    #[test]
    fn rejects_invalid_keys() {
        let message = |key: &str, line: usize| {
            format!(
                "line {line}: invalid output name `{key}`: use letters, digits, `_` and `-`, starting with a letter or `_`"
            )
        };
        assert_eq!(err("=v"), message("", 1));
        assert_eq!(err("ok=1\n1a=v"), message("1a", 2));
        assert_eq!(err("-a=v"), message("-a", 1));
        assert_eq!(err("a b=v"), message("a b", 1));
        assert_eq!(err("key =v"), message("key ", 1));
        assert_eq!(err("ké=v"), message("ké", 1));
        assert_eq!(err("a.b<<EOF\nx\nEOF"), message("a.b", 1));
    }

    #[test]
    fn rejects_an_empty_heredoc_delimiter() {
        assert_eq!(
            err("a=1\nnotes<<\nx\n"),
            "line 2: missing heredoc delimiter after `notes<<` (write e.g. `notes<<EOF`)"
        );
    }

    #[test]
    fn rejects_an_unterminated_heredoc_naming_opener_and_delimiter() {
        assert_eq!(
            err("a=1\nnotes<<EOF\none\nEOF \n"),
            "line 2: heredoc for `notes` is never closed: end it with a line containing only `EOF`"
        );
        assert_eq!(
            parse("x<<END"),
            Err(OutputFileError::UnterminatedHeredoc {
                line: 1,
                key: "x".to_owned(),
                delimiter: "END".to_owned()
            })
        );
    }
}
