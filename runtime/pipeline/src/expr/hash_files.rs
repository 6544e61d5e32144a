//! `hashFiles(patterns…)`: the one function that reads the disk.
//!
//! The digest is GitHub's: SHA-256 over the concatenated SHA-256 digests of
//! every matched file, files sorted by their workspace-relative path. A
//! pattern that names a directory matches every file below it. Globs are
//! the small set GitHub documents (`*`, `**`, `?`, leading `!` to exclude),
//! matched by hand: a glob crate would bring regex compilation for four
//! wildcard rules.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Walks at most this many directory entries, so a `**` over a huge tree
/// fails clearly instead of hanging the run.
const MAX_ENTRIES: usize = 1_000_000;

/// Hex digest of the files under `root` matching `patterns`, or `''` when
/// none match.
pub(super) fn hash_files(root: &Path, patterns: &[String]) -> Result<String, String> {
    let mut outer = Sha256::new();
    let mut any = false;
    for rel in &match_files(root, patterns)? {
        outer.update(
            file_digest(&root.join(rel))
                .map_err(|e| format!("`hashFiles` cannot read `{rel}`: {e}"))?,
        );
        any = true;
    }
    Ok(if any {
        hex(&outer.finalize())
    } else {
        String::new()
    })
}

/// The files under `root` that `patterns` select, as sorted `/`-separated
/// relative paths: the matching rules of `hashFiles` (a directory selects
/// every file below it; `!` excludes; symlinked directories are not
/// followed). Errors name the pattern in `hashFiles` terms.
pub(super) fn match_files(root: &Path, patterns: &[String]) -> Result<Vec<String>, String> {
    let rules = patterns
        .iter()
        .map(|p| Rule::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut candidates = BTreeSet::new();
    let mut budget = MAX_ENTRIES;
    for rule in rules.iter().filter(|r| !r.negated) {
        collect(root, &rule.base(), &mut candidates, &mut budget)?;
    }
    Ok(candidates
        .into_iter()
        .filter(|rel| selected(&rules, rel))
        .collect())
}

/// The last rule that matches decides (so `!` can exclude and a later
/// positive pattern can re-include).
fn selected(rules: &[Rule], rel: &str) -> bool {
    let mut keep = false;
    for rule in rules {
        if rule.matches_or_ancestor(rel) {
            keep = !rule.negated;
        }
    }
    keep
}

struct Rule {
    negated: bool,
    segments: Vec<String>,
}

impl Rule {
    fn parse(pattern: &str) -> Result<Self, String> {
        let (negated, body) = match pattern.trim().strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, pattern.trim()),
        };
        let body = body.trim_start_matches("./");
        let mut segments = Vec::new();
        for seg in body.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    return Err(format!(
                        "`hashFiles` pattern `{pattern}` leaves the workspace"
                    ));
                }
                // `**/**` is `**`; collapsing keeps matching polynomial.
                "**" if segments.last().is_some_and(|l| l == "**") => {}
                s => segments.push(s.to_owned()),
            }
        }
        if segments.len() > 64 {
            return Err(format!(
                "`hashFiles` pattern `{pattern}` has too many segments"
            ));
        }
        if body.starts_with('/') {
            return Err(format!(
                "`hashFiles` pattern `{pattern}` is absolute; patterns are relative to the workspace"
            ));
        }
        Ok(Self { negated, segments })
    }

    /// The literal leading directories: only they need walking.
    fn base(&self) -> PathBuf {
        self.segments
            .iter()
            .take_while(|s| !s.contains(['*', '?']))
            .collect()
    }

    /// Matches `rel` itself or one of its directories (implicit descendants).
    fn matches_or_ancestor(&self, rel: &str) -> bool {
        let parts: Vec<&str> = rel.split('/').collect();
        (1..=parts.len()).any(|n| match_segments(&self.segments, &parts[..n]))
    }
}

/// Segment-wise glob match; `**` matches zero or more whole segments.
fn match_segments(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_segments(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((seg, more)) => {
                match_one(first.as_bytes(), seg.as_bytes()) && match_segments(rest, more)
            }
            None => false,
        },
    }
}

/// `*` and `?` within one segment, by the classic two-pointer backtrack
/// (linear in practice, never exponential).
pub(super) fn match_one(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// Adds every file under `root/base` (or `base` itself if it is a file) as
/// a `/`-separated relative path. Symlinked directories are not followed
/// (no loops, no escaping the workspace); symlinked files are.
fn collect(
    root: &Path,
    base: &Path,
    out: &mut BTreeSet<String>,
    budget: &mut usize,
) -> Result<(), String> {
    let mut stack = vec![base.to_path_buf()];
    while let Some(rel) = stack.pop() {
        let full = root.join(&rel);
        let Ok(meta) = fs::symlink_metadata(&full) else {
            continue;
        };
        if meta.is_dir() {
            let Ok(entries) = fs::read_dir(&full) else {
                continue;
            };
            for entry in entries.flatten() {
                *budget = budget.checked_sub(1).ok_or_else(|| {
                    format!("`hashFiles` stopped after {MAX_ENTRIES} files; narrow the pattern")
                })?;
                stack.push(rel.join(entry.file_name()));
            }
        } else if (meta.is_file() || (meta.file_type().is_symlink() && inside(root, &full)))
            && let Some(s) = rel.to_str()
        {
            out.insert(s.replace(std::path::MAIN_SEPARATOR, "/"));
        }
    }
    Ok(())
}

/// Whether a symlink resolves to a file inside the workspace.
fn inside(root: &Path, link: &Path) -> bool {
    match (fs::canonicalize(root), fs::canonicalize(link)) {
        (Ok(root), Ok(target)) => target.starts_with(root) && target.is_file(),
        _ => false,
    }
}

fn file_digest(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
