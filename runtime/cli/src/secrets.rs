//! Secrets from the command line, secret files and `KILN_SECRET_<NAME>`.
//!
//! Secret file format (documented in docs/pipeline.md, "Secrets"):
//!
//! ```text
//! # comments and blank lines are ignored
//! TOKEN=abc123               # unquoted: trimmed; a ` #` starts a comment
//! export API_KEY=xyz         # an `export ` prefix is allowed (shell-compatible)
//! PASSWORD="p@ss \"w\"\n"    # double quotes: \n \t \" \\ escapes
//! RAW='no $escapes\n here'   # single quotes: literal
//! CERT<<EOF                  # heredoc: every line up to a line `EOF`
//! -----BEGIN CERTIFICATE-----
//! …
//! EOF
//! ```
//!
//! Precedence: `--secret` over `--secret-file` (later files win) over the
//! environment. Error messages name the file and line, never the value.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use crate::args::check_name;
use crate::error::CliError;

/// Prefix of environment variables that provide secrets.
const ENV_PREFIX: &str = "KILN_SECRET_";

/// Whether the environment variable `name` provides a secret.
pub(crate) fn is_secret_variable(name: &str) -> bool {
    name.starts_with(ENV_PREFIX)
}

/// Gathers every secret, highest precedence last applied.
pub(crate) fn collect(
    flags: &[(String, String)],
    files: &[PathBuf],
    env: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<BTreeMap<String, String>, CliError> {
    let mut secrets = BTreeMap::new();
    for (key, value) in env {
        let (Some(key), Ok(value)) = (key.to_str(), value.into_string()) else {
            continue;
        };
        if let Some(name) = key.strip_prefix(ENV_PREFIX)
            && check_name(name).is_ok()
        {
            secrets.insert(name.to_owned(), value);
        }
    }
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|source| CliError::Io {
            path: file.clone(),
            source,
        })?;
        let display = file.display().to_string();
        for (key, value) in parse_file(&text)
            .map_err(|(line, msg)| CliError::Usage(format!("{display}:{line}: {msg}")))?
        {
            secrets.insert(key, value);
        }
    }
    for (key, value) in flags {
        secrets.insert(key.clone(), value.clone());
    }
    Ok(secrets)
}

/// Parses a secret file; errors carry the 1-based line number.
pub(crate) fn parse_file(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    while let Some((number, raw)) = lines.next() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        if let Some((key, delimiter)) = line.split_once("<<")
            && !key.contains('=')
        {
            let (key, delimiter) = (key.trim(), delimiter.trim());
            check_name(key).map_err(|m| (number, m))?;
            if delimiter.is_empty() {
                return Err((
                    number,
                    format!("heredoc for `{key}` needs a delimiter (`{key}<<EOF`)"),
                ));
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
                return Err((
                    number,
                    format!("heredoc for `{key}` is never closed by a `{delimiter}` line"),
                ));
            }
            out.push((key.to_owned(), body.join("\n")));
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err((
                number,
                "expected `KEY=VALUE`, `KEY<<EOF`, a `#` comment or a blank line".into(),
            ));
        };
        let key = key.trim();
        check_name(key).map_err(|m| (number, m))?;
        let value =
            parse_value(value.trim_start()).map_err(|m| (number, format!("`{key}`: {m}")))?;
        out.push((key.to_owned(), value));
    }
    Ok(out)
}

fn parse_value(value: &str) -> Result<String, String> {
    let (body, rest) = if let Some(inner) = value.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = inner.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(c @ ('"' | '\\' | '$')) => out.push(c),
                    Some(c) => return Err(format!("unknown escape `\\{c}` in double quotes")),
                    None => break,
                },
                c => out.push(c),
            }
        }
        let end = end.ok_or("missing closing `\"`")?;
        (out, &inner[end..])
    } else if let Some(inner) = value.strip_prefix('\'') {
        let end = inner.find('\'').ok_or("missing closing `'`")?;
        (inner[..end].to_owned(), &inner[end + 1..])
    } else {
        let body = match value.find(" #") {
            Some(comment) => &value[..comment],
            None => value,
        };
        return Ok(body.trim_end().to_owned());
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(body)
    } else {
        Err("unexpected text after the closing quote".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse_file(text).expect("valid secret file")
    }

    #[test]
    fn file_forms() {
        let text = "# header\n\nA=plain value  # note\nexport B=x\nC=\"q \\\"t\\\"\\nline\"\nD='raw \\n $x'\nE<<END\nl1\n\nl3\nEND\nF=\n";
        assert_eq!(
            pairs(text),
            vec![
                ("A".into(), "plain value".into()),
                ("B".into(), "x".into()),
                ("C".into(), "q \"t\"\nline".into()),
                ("D".into(), "raw \\n $x".into()),
                ("E".into(), "l1\n\nl3".into()),
                ("F".into(), String::new()),
            ]
        );
    }

    #[test]
    fn file_errors_name_the_line_not_the_value() {
        assert_eq!(
            parse_file("A=1\nhunter2\n"),
            Err((
                2,
                "expected `KEY=VALUE`, `KEY<<EOF`, a `#` comment or a blank line".into()
            ))
        );
        assert_eq!(
            parse_file("A=\"open\n"),
            Err((1, "`A`: missing closing `\"`".into()))
        );
        assert_eq!(
            parse_file("K<<EOF\nsecret\n"),
            Err((1, "heredoc for `K` is never closed by a `EOF` line".into()))
        );
        assert_eq!(
            parse_file("A B=1"),
            Err((
                1,
                "`A B` is not a valid name (letters, digits and `_`, not starting with a digit)"
                    .into()
            ))
        );
    }

    #[test]
    fn precedence_is_flag_then_file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.env");
        std::fs::write(&file, "A=file\nB=file\n").unwrap();
        let env = [
            (OsString::from("KILN_SECRET_A"), OsString::from("env")),
            (OsString::from("KILN_SECRET_C"), OsString::from("env")),
            (OsString::from("KILN_SECRET_"), OsString::from("ignored")),
            (OsString::from("OTHER"), OsString::from("ignored")),
        ];
        let got = collect(&[("A".into(), "flag".into())], &[file], env).unwrap();
        let got: Vec<(&str, &str)> = got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, vec![("A", "flag"), ("B", "file"), ("C", "env")]);
    }
}
