//! Secret masking: every form of a secret that can appear in output becomes
//! `***`.
//!
//! A secret is masked as its exact value, each line of a multi-line value,
//! and its base64 forms (standard and URL-safe alphabets, padded or not,
//! embedded in a longer base64 stream, and wrapped by the `base64` and
//! `openssl base64` tools). Masking works on one line of text at a time; the
//! caller joins partial writes into lines first (see `lines.rs`).
//!
//! Values (and lines of values) shorter than [`MIN_SECRET_LEN`] bytes once
//! trimmed are not masked: replacing every `a` or every space in a log would
//! destroy it while hiding nothing an attacker could not guess. The CLI warns
//! about such secrets, using [`is_maskable`].

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// What a masked secret is replaced with.
pub const MASK: &str = "***";

/// Shortest value (in bytes, after trimming whitespace) that is masked.
pub const MIN_SECRET_LEN: usize = 3;

/// Shortest base64 piece that is masked. Shorter pieces of an embedded
/// encoding would match ordinary words far too often.
const MIN_BASE64_LEN: usize = 4;

/// Line widths of the common base64 tools: GNU `base64` wraps at 76
/// columns, `openssl base64` (and PEM) at 64.
const WRAP_WIDTHS: [usize; 2] = [76, 64];

/// Whether `secret` is long enough to be masked (see [`MIN_SECRET_LEN`]).
pub fn is_maskable(secret: &str) -> bool {
    secret.trim().len() >= MIN_SECRET_LEN
}

/// Replaces secrets in output with `***`.
///
/// Building a masker derives every pattern up front (a dozen or so per
/// secret, more for long secrets); [`Masker::mask`] then scans the text once
/// per pattern, which is cheap for the handful of secrets a run has.
/// `Debug` prints only the number of patterns, never a secret.
#[derive(Clone, Default)]
pub struct Masker {
    /// Distinct patterns, each at least [`MIN_SECRET_LEN`] bytes.
    patterns: Vec<String>,
}

impl Masker {
    /// A masker for `secrets`. Secrets that are not [maskable](is_maskable)
    /// are ignored.
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut patterns = Vec::new();
        for secret in secrets {
            add_forms(secret.as_ref(), &mut patterns);
        }
        patterns.retain(|p| is_maskable(p));
        // Longest first so that equal-start matches keep the longer one
        // without relying on the merge step; dedup needs sorted input.
        patterns.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        patterns.dedup();
        Self { patterns }
    }

    /// Masks every occurrence of every secret form in `text`.
    ///
    /// Overlapping matches merge into one `***`, so the longest form wins;
    /// separate (or merely adjacent) matches each become `***`. Borrows
    /// `text` when nothing matched.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let ranges = self.matches(text);
        if ranges.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for range in ranges {
            out.push_str(&text[copied..range.start]);
            out.push_str(MASK);
            copied = range.end;
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }

    /// No secret to mask (fast path).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Length in bytes of the longest masked pattern (callers holding back a
    /// partial line keep this many minus one bytes unflushed).
    pub fn longest(&self) -> usize {
        self.patterns.first().map_or(0, String::len)
    }

    /// Sorted, merged byte ranges of `text` covered by some pattern.
    fn matches(&self, text: &str) -> Vec<Range<usize>> {
        let mut found = Vec::new();
        for pattern in &self.patterns {
            // Step by one char, not by the match length, so overlapping
            // occurrences (`abab` in `ababab`) are all covered.
            let step = pattern.chars().next().map_or(1, char::len_utf8);
            let mut from = 0;
            while let Some(at) = text[from..].find(pattern.as_str()) {
                let start = from + at;
                found.push(start..start + pattern.len());
                from = start + step;
            }
        }
        merge(found)
    }
}

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Masker")
            .field("patterns", &self.patterns.len())
            .finish()
    }
}

/// Sorts ranges and merges the overlapping ones (touching ranges stay apart,
/// so two adjacent secrets read as `******`).
fn merge(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start < last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    merged
}

/// Pushes every form of `secret` that may show up in output.
fn add_forms(secret: &str, out: &mut Vec<String>) {
    if !is_maskable(secret) {
        return;
    }
    out.push(secret.to_owned());
    if secret.contains('\n') {
        out.extend(secret.lines().map(|line| line.trim().to_owned()));
    }
    add_base64_forms(secret.as_bytes(), out);
}

/// Pushes the base64 forms of `value`: whole encodings, the pieces that stay
/// the same whatever bytes surround the value in a longer stream, and the
/// lines the `base64` tools wrap a long encoding into.
fn add_base64_forms(value: &[u8], out: &mut Vec<String>) {
    for engine in [&STANDARD, &URL_SAFE] {
        out.push(engine.encode(value));
    }
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        out.push(engine.encode(value));
        for offset in 0..3 {
            let inner = stable_inner(engine, value, offset);
            if inner.len() >= MIN_BASE64_LEN {
                out.push(inner);
            }
        }
    }
    // What `printf %s "$S" | base64` prints for a long secret (padded) or
    // `echo "$S" | base64` (the stable part, the newline changes the tail).
    let wrapped = [
        STANDARD.encode(value),
        stable_inner(&STANDARD_NO_PAD, value, 0),
    ];
    for encoded in &wrapped {
        for width in WRAP_WIDTHS {
            if encoded.len() <= width {
                continue;
            }
            let chunks = encoded.as_bytes().chunks(width);
            // Base64 is ASCII, so every chunk is a valid `str`.
            out.extend(
                chunks
                    .filter(|c| c.len() >= MIN_BASE64_LEN)
                    .map(|c| String::from_utf8_lossy(c).into_owned()),
            );
        }
    }
}

/// The characters of the base64 encoding of `value`, preceded by `offset`
/// (0..3) unknown bytes and followed by unknown bytes, that depend on
/// `value` alone.
///
/// Each base64 character encodes 6 bits; the value occupies bits
/// `8 * offset .. 8 * (offset + len)` of the stream, so character `j` is
/// stable when bits `6j .. 6j + 6` lie inside that span.
fn stable_inner(engine: &impl base64::Engine, value: &[u8], offset: usize) -> String {
    let mut stream = vec![0u8; offset];
    stream.extend_from_slice(value);
    let encoded = engine.encode(&stream);
    let start = (8 * offset).div_ceil(6);
    let end = (8 * (offset + value.len())) / 6;
    encoded.get(start..end).unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "hunter2-secret-value";
    /// 93 bytes: its base64 is wrapped by the `base64` tools.
    const LONG: &str = "correct-horse-battery-staple-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ";

    fn mask(secrets: &[&str], text: &str) -> String {
        Masker::new(secrets).mask(text).into_owned()
    }

    #[test]
    fn masks_the_exact_value() {
        assert_eq!(
            mask(&[SECRET], "token: hunter2-secret-value."),
            "token: ***."
        );
    }

    #[test]
    fn masks_a_value_appearing_twice() {
        assert_eq!(
            mask(&[SECRET], "hunter2-secret-value and hunter2-secret-value"),
            "*** and ***"
        );
    }

    #[test]
    fn masks_adjacent_values_separately() {
        assert_eq!(mask(&["alpha1", "beta22"], "[alpha1beta22]"), "[******]");
        assert_eq!(mask(&["alpha1"], "alpha1alpha1"), "******");
    }

    #[test]
    fn overlapping_matches_merge_and_the_longest_wins() {
        assert_eq!(mask(&["secret", "secret-long"], "a secret-long!"), "a ***!");
        assert_eq!(mask(&["abcdef", "defghi"], "xabcdefghix"), "x***x");
        assert_eq!(mask(&["abab"], "ababab"), "***");
    }

    #[test]
    fn masks_several_secrets_in_one_line() {
        assert_eq!(
            mask(&["one-secret", "two-secret"], "two-secret, one-secret"),
            "***, ***"
        );
    }

    #[test]
    fn masks_unicode_values() {
        assert_eq!(mask(&["pässwörd-ü"], "pw=pässwörd-ü!"), "pw=***!");
        assert_eq!(mask(&["日本語の秘密"], "»日本語の秘密«"), "»***«");
        // `printf %s 'pässwörd-ü' | base64`
        assert_eq!(mask(&["pässwörd-ü"], "cMOkc3N3w7ZyZC3DvA=="), "***");
    }

    #[test]
    fn masks_each_line_of_a_multi_line_value_trimmed() {
        let secret = "-----BEGIN KEY-----\n  line-two  \r\nx\n-----END KEY-----\n";
        assert_eq!(mask(&[secret], "got line-two here"), "got *** here");
        assert_eq!(mask(&[secret], "-----BEGIN KEY-----"), "***");
        // A one-letter line would mask every `x` in the log.
        assert_eq!(mask(&[secret], "x marks"), "x marks");
    }

    #[test]
    fn ignores_values_shorter_than_three_bytes_after_trimming() {
        let masker = Masker::new(["", "ab", "   ", " a "]);
        assert!(masker.is_empty());
        assert_eq!(masker.longest(), 0);
        assert!(matches!(masker.mask("ab a "), Cow::Borrowed("ab a ")));
        assert!(!is_maskable("é"));
        assert!(is_maskable("abc"));
        assert!(is_maskable("€"));
    }

    #[test]
    fn default_masks_nothing_and_borrows() {
        let masker = Masker::default();
        assert!(masker.is_empty());
        assert!(matches!(masker.mask("hunter2"), Cow::Borrowed("hunter2")));
    }

    #[test]
    fn borrows_when_nothing_matches() {
        let masker = Masker::new([SECRET]);
        assert!(!masker.is_empty());
        assert!(matches!(
            masker.mask("nothing here"),
            Cow::Borrowed("nothing here")
        ));
    }

    #[test]
    fn longest_is_the_longest_pattern_in_bytes() {
        // The padded base64 (28 chars) is longer than the value (20).
        assert_eq!(Masker::new([SECRET]).longest(), 28);
        assert_eq!(Masker::new(["abc"]).longest(), 4);
    }

    #[test]
    fn debug_does_not_print_secrets() {
        let debug = format!("{:?}", Masker::new([SECRET]));
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("aHVudGVy"), "{debug}");
        assert!(debug.starts_with("Masker { patterns: "), "{debug}");
    }

    #[test]
    fn masks_standard_base64_with_and_without_padding() {
        // `printf %s "$SECRET" | base64`
        assert_eq!(mask(&[SECRET], "aHVudGVyMi1zZWNyZXQtdmFsdWU="), "***");
        assert_eq!(
            mask(&[SECRET], "b64=aHVudGVyMi1zZWNyZXQtdmFsdWU;"),
            "b64=***;"
        );
        assert_eq!(mask(&["abc"], "YWJj"), "***");
    }

    #[test]
    fn masks_url_safe_base64() {
        let secret = "s3cr3t>>>???~~~";
        // `printf %s "$S" | base64` and `| basenc --base64url`
        assert_eq!(mask(&[secret], "czNjcjN0Pj4+Pz8/fn5+"), "***");
        assert_eq!(mask(&[secret], "czNjcjN0Pj4-Pz8_fn5-"), "***");
    }

    #[test]
    fn masks_base64_of_the_value_followed_by_a_newline() {
        // `echo "$SECRET" | base64`: the last characters encode the newline
        // (the `U` is masked as part of the unpadded encoding, whose last
        // character happens to match because `\n` starts with two zero bits).
        assert_eq!(mask(&[SECRET], "aHVudGVyMi1zZWNyZXQtdmFsdWUK"), "***K");
        assert_eq!(mask(&[SECRET], "aHVudGVyMi1zZWNyZXQtdmFsdWX"), "***X");
    }

    #[test]
    fn masks_base64_of_the_value_inside_a_longer_stream() {
        // `echo "TOKEN=$SECRET" | base64`, `echo "x$SECRET" | base64`,
        // `echo "xy$SECRET" | base64`: the value at every offset mod 3.
        assert_eq!(
            mask(&[SECRET], "VE9LRU49aHVudGVyMi1zZWNyZXQtdmFsdWUK"),
            "VE9LRU49***K"
        );
        assert_eq!(
            mask(&[SECRET], "eGh1bnRlcjItc2VjcmV0LXZhbHVlCg=="),
            "eG***Cg=="
        );
        assert_eq!(
            mask(&[SECRET], "eHlodW50ZXIyLXNlY3JldC12YWx1ZQo="),
            "eHl***Qo="
        );
    }

    #[test]
    fn masks_each_line_of_base64_wrapped_at_76_columns() {
        let masker = Masker::new([LONG]);
        // `printf %s "$LONG" | base64`
        let lines = [
            "Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5LXN0YXBsZS0wMTIzNDU2Nzg5LWFiY2RlZmdoaWprbG1ub3Bx",
            "cnN0dXZ3eHl6LUFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFla",
        ];
        assert_eq!(lines.map(|l| masker.mask(l).into_owned()), ["***", "***"]);
        // `echo "$LONG" | base64`
        let second = "cnN0dXZ3eHl6LUFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaCg==";
        assert_eq!(masker.mask(second), "***Cg==");
    }

    #[test]
    fn masks_each_line_of_base64_wrapped_at_64_columns() {
        let masker = Masker::new([LONG]);
        // `printf %s "$LONG" | openssl base64`
        let lines = [
            "Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5LXN0YXBsZS0wMTIzNDU2Nzg5LWFiY2RlZmdo",
            "aWprbG1ub3BxcnN0dXZ3eHl6LUFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFla",
        ];
        assert_eq!(lines.map(|l| masker.mask(l).into_owned()), ["***", "***"]);
    }

    #[test]
    fn stable_inner_drops_characters_that_depend_on_neighbours() {
        // "abc" alone is `YWJj`; after one unknown byte (`?FiYw`) the first
        // and last characters mix in unknown bits.
        assert_eq!(stable_inner(&STANDARD_NO_PAD, b"abc", 0), "YWJj");
        // `YWJjZA`: the `A` holds only the last 2 bits of `d`.
        assert_eq!(stable_inner(&STANDARD_NO_PAD, b"abcd", 0), "YWJjZ");
        assert_eq!(stable_inner(&STANDARD_NO_PAD, b"abc", 1), "FiY");
        assert_eq!(stable_inner(&STANDARD_NO_PAD, b"a", 2), "h");
        assert_eq!(stable_inner(&STANDARD_NO_PAD, b"a", 1), "");
    }

    #[test]
    fn merge_keeps_touching_ranges_apart() {
        assert_eq!(merge(vec![4..6, 0..2, 2..4, 1..3]), [0..4, 4..6]);
        assert_eq!(merge(vec![0..10, 2..3, 12..14]), [0..10, 12..14]);
        assert_eq!(merge(vec![]), Vec::<Range<usize>>::new());
    }
}
