//! "Did you mean …?" for misspelled names.

/// The candidate closest to `input`, if it is close enough to be a likely
/// typo (Jaro-Winkler ≥ 0.8, or the same letters in another case).
///
/// Called only on failures, so the linear scan over candidates never sits on
/// the hot path of a valid pipeline.
pub(crate) fn closest<'c>(
    input: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let lowered = input.to_ascii_lowercase().replace('-', "_");
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let normalized = candidate.to_ascii_lowercase().replace('-', "_");
        let score = if normalized == lowered {
            1.0
        } else {
            strsim::jaro_winkler(&lowered, &normalized)
        };
        if score >= 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// `did you mean `x`?` when a close candidate exists, else `otherwise`.
pub(crate) fn help<'c>(
    input: &str,
    candidates: impl IntoIterator<Item = &'c str>,
    otherwise: impl FnOnce() -> Option<String>,
) -> Option<String> {
    match closest(input, candidates) {
        Some(c) => Some(format!("did you mean `{c}`?")),
        None => otherwise(),
    }
}

/// `a, b, c`, or the first few and how many more, for a help text.
pub(crate) fn listing<'c>(names: impl IntoIterator<Item = &'c str>) -> String {
    const SHOWN: usize = 8;
    let names: Vec<&str> = names.into_iter().collect();
    let mut text = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_are_suggested() {
        assert_eq!(closest("stpes", ["steps", "env", "needs"]), Some("steps"));
        assert_eq!(
            closest("depends-on", ["needs", "depends_on"]),
            Some("depends_on")
        );
        assert_eq!(closest("NEEDS", ["needs"]), Some("needs"));
    }

    #[test]
    fn distant_names_are_not() {
        assert_eq!(closest("zzz", ["steps", "env", "needs"]), None);
    }
}
