//! Finding the pipeline file, the workspace it runs in, and the state directory.
//!
//! The workspace (where steps run and `.kiln/` lives) is the directory that
//! holds the pipeline file, except when that directory is one of the known
//! config folders ([`CONFIG_DIRS`]: `.dcanary/`, `.kiln/`): then it is that
//! folder's parent, the project root. Only known names count: a project
//! that merely lives in a hidden directory (`/tmp/.tmpXYZ/`) is its own root. The rule depends
//! only on the file's path, never on the current directory, so `kiln run
//! ci/kiln.yml` behaves the same wherever it is started.

use std::path::{Path, PathBuf};

use crate::error::CliError;

/// The names tried, in order, when no file is given.
pub(crate) const DEFAULT_FILES: [&str; 3] = ["kiln.yml", ".kiln.yml", ".dcanary/pipeline.yml"];

/// Folders that hold a pipeline on behalf of the directory above them.
pub(crate) const CONFIG_DIRS: [&str; 2] = [".dcanary", ".kiln"];

/// A located pipeline file.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    /// The path as the user gave it (or the default name found), for messages.
    pub display: String,
    /// The path to open.
    pub path: PathBuf,
    /// Where steps run.
    pub workspace: PathBuf,
}

/// Resolves the pipeline file: `file` if given, else the first default
/// name that exists in the current directory.
pub(crate) fn pipeline(file: Option<&Path>) -> Result<Located, CliError> {
    let path = match file {
        Some(file) => file.to_path_buf(),
        None => DEFAULT_FILES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or(CliError::NoPipeline)?,
    };
    let absolute = std::path::absolute(&path).map_err(|source| CliError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(Located {
        display: path.display().to_string(),
        workspace: workspace_of(&absolute),
        path,
    })
}

/// The workspace for a pipeline file at `absolute`.
pub(crate) fn workspace_of(absolute: &Path) -> PathBuf {
    let dir = absolute.parent().unwrap_or(Path::new("/"));
    let config = dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| CONFIG_DIRS.contains(&n));
    match dir.parent() {
        Some(parent) if config => parent.to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

/// The state directory: `--state-dir`, else `.kiln` in the workspace of the
/// default pipeline, else `./.kiln`.
pub(crate) fn state_dir(explicit: Option<&Path>, pipeline: Option<&Located>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    match pipeline {
        Some(located) => located.workspace.join(".kiln"),
        None => PathBuf::from(".kiln"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_is_the_files_directory_or_the_project_root() {
        assert_eq!(workspace_of(Path::new("/p/kiln.yml")), Path::new("/p"));
        assert_eq!(
            workspace_of(Path::new("/p/ci/kiln.yml")),
            Path::new("/p/ci")
        );
        assert_eq!(
            workspace_of(Path::new("/p/.dcanary/pipeline.yml")),
            Path::new("/p")
        );
        assert_eq!(
            workspace_of(Path::new("/p/.kiln/kiln.yml")),
            Path::new("/p")
        );
        assert_eq!(workspace_of(Path::new("/p/.kiln.yml")), Path::new("/p"));
        assert_eq!(
            workspace_of(Path::new("/tmp/.tmpXYZ/kiln.yml")),
            Path::new("/tmp/.tmpXYZ")
        );
    }
}
