//! Where the user plugin store lives.

use std::ffi::OsString;
use std::path::PathBuf;

/// The plugin store directory: `$KILN_HOME/plugins`, else
/// `$XDG_DATA_HOME/kiln/plugins`, else `$HOME/.local/share/kiln/plugins`.
/// `env` looks up a variable (empty values count as unset, as XDG says).
pub fn plugin_dir(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(home) = var("KILN_HOME") {
        return Some(home.join("plugins"));
    }
    if let Some(data) = var("XDG_DATA_HOME").filter(|p| p.is_absolute()) {
        return Some(data.join("kiln").join("plugins"));
    }
    var("HOME").map(|home| home.join(".local/share/kiln/plugins"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(vars: &[(&str, &str)]) -> Option<PathBuf> {
        plugin_dir(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn kiln_home_wins_then_xdg_then_home() {
        let all = [("KILN_HOME", "/k"), ("XDG_DATA_HOME", "/x"), ("HOME", "/h")];
        assert_eq!(dir(&all), Some("/k/plugins".into()));
        assert_eq!(dir(&all[1..]), Some("/x/kiln/plugins".into()));
        assert_eq!(dir(&all[2..]), Some("/h/.local/share/kiln/plugins".into()));
        assert_eq!(dir(&[]), None);
    }

    #[test]
    fn empty_and_relative_values_are_ignored() {
        assert_eq!(
            dir(&[("KILN_HOME", ""), ("XDG_DATA_HOME", "rel"), ("HOME", "/h")]),
            Some("/h/.local/share/kiln/plugins".into())
        );
    }
}
