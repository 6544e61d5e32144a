//! The path rules shared by packing and extraction: what an entry may be
//! called and where a symlink may point.

use std::path::{Component, Path, PathBuf};

use super::error::{Error, LinkReason};

/// The entry's path made relative and normal (`./a/b` → `a/b`), or `None`
/// for the archive's root (`./`). Refuses absolute paths and `..`.
pub(crate) fn entry_path(raw: &Path) -> Result<Option<PathBuf>, Error> {
    let mut out = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(Error::ParentDir {
                    path: raw.to_owned(),
                });
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(Error::AbsolutePath {
                    path: raw.to_owned(),
                });
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Checks that the symlink at `link` (a normal relative path, as from
/// [`entry_path`]) pointing at `target` resolves inside the tree.
///
/// The rule is syntactic so it holds whatever else the tree contains: the
/// target is relative, its `..` all come first and climb no higher than the
/// link's own directory is deep, and names follow. Resolving such a target
/// starts in a real directory (extraction never writes through links), climbs
/// to a directory still inside the tree, then only descends; a name that is
/// itself a link obeys the same rule, so no chain of links climbs out. A `..`
/// after a name is refused because after a link to `.` it would climb one
/// level more than it appears to.
pub(crate) fn check_link(link: &Path, target: &Path) -> Result<(), Error> {
    let refuse = |reason| Error::Link {
        path: link.to_owned(),
        target: target.to_owned(),
        reason,
    };
    if target.as_os_str().is_empty() {
        return Err(refuse(LinkReason::Empty));
    }
    let depth = link.components().count().saturating_sub(1);
    let mut climbs = 0;
    let mut named = false;
    for component in target.components() {
        match component {
            Component::RootDir | Component::Prefix(_) => return Err(refuse(LinkReason::Absolute)),
            Component::ParentDir if named => return Err(refuse(LinkReason::ParentAfterName)),
            Component::ParentDir => {
                climbs += 1;
                if climbs > depth {
                    return Err(refuse(LinkReason::Climbs));
                }
            }
            Component::CurDir => {}
            Component::Normal(_) => named = true,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(raw: &str) -> Result<Option<String>, String> {
        entry_path(Path::new(raw))
            .map(|p| p.map(|p| p.display().to_string()))
            .map_err(|e| e.to_string())
    }

    fn link(at: &str, target: &str) -> Result<(), String> {
        check_link(Path::new(at), Path::new(target)).map_err(|e| e.to_string())
    }

    #[test]
    fn entry_paths_are_normalised_or_refused() {
        assert_eq!(entry("a/b"), Ok(Some("a/b".into())));
        assert_eq!(entry("./a//b/"), Ok(Some("a/b".into())));
        assert_eq!(entry("./"), Ok(None));
        assert_eq!(
            entry("/etc/passwd"),
            Err(
                "archive entry `/etc/passwd` has an absolute path; entries must be relative".into()
            )
        );
        assert_eq!(
            entry("a/../../x"),
            Err(
                "archive entry `a/../../x` contains `..`; entries must stay inside the destination"
                    .into()
            )
        );
    }

    #[test]
    fn link_targets_stay_inside() {
        assert_eq!(link("lib/libz.so", "libz.so.1"), Ok(()));
        assert_eq!(link("bin/tool", "../lib/tool"), Ok(()));
        assert_eq!(link("a/b/c", "./../../x"), Ok(()));
        assert_eq!(link("here", "."), Ok(()));
        assert_eq!(
            link("link", "/etc"),
            Err("symlink `link` -> `/etc` is refused: its target is absolute; use a relative target".into())
        );
        assert_eq!(
            link("a/up", "../../x"),
            Err("symlink `a/up` -> `../../x` is refused: its target climbs above the top of the tree".into())
        );
        assert_eq!(
            link("top", ".."),
            Err(
                "symlink `top` -> `..` is refused: its target climbs above the top of the tree"
                    .into()
            )
        );
        assert_eq!(
            link("a/b", "s/.."),
            Err(
                "symlink `a/b` -> `s/..` is refused: its target has `..` after a name, \
                 which may leave the tree through another link"
                    .into()
            )
        );
        assert_eq!(
            link("x", ""),
            Err("symlink `x` -> `` is refused: its target is empty".into())
        );
    }
}
