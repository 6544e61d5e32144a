//! One module per subcommand; each returns the process exit code.

pub(crate) mod artifacts;
pub(crate) mod deploy;
pub(crate) mod gc;
pub(crate) mod plan;
pub(crate) mod plugin;
pub(crate) mod run;
pub(crate) mod runs;
pub(crate) mod validate;

use std::collections::BTreeMap;

use kiln_pipeline::{Diagnostic, LoadOptions, Loaded, SourceFile};

use crate::error::CliError;
use crate::locate::Located;

/// Reads and loads a pipeline; a [`kiln_pipeline::LoadError`] becomes
/// [`CliError::Load`], rendered by `main`.
pub(crate) fn load(
    located: &Located,
    vars: &[(String, String)],
) -> Result<(SourceFile, Result<Loaded, kiln_pipeline::LoadError>), CliError> {
    let text = read_pipeline(&located.path)?;
    let source = SourceFile::new(located.display.clone(), text);
    let options = LoadOptions {
        vars: vars.iter().cloned().collect(),
        system_env: system_env(),
    };
    let loaded = kiln_pipeline::load(&source, &options);
    Ok((source, loaded))
}

/// Loads a pipeline that is about to be used (planned or run): an invalid
/// one (including a `uses:` that is not a plugin reference) is an error,
/// warnings go to stderr.
pub(crate) fn load_for_use(
    located: &Located,
    vars: &[(String, String)],
) -> Result<(SourceFile, Loaded), CliError> {
    let (source, loaded) = load(located, vars)?;
    let loaded = loaded.map_err(CliError::Load)?;
    let bad_references = plugin::pipeline::check(&loaded.plan, &source);
    if !bad_references.is_empty() {
        let mut diagnostics = loaded.warnings;
        diagnostics.extend(bad_references);
        diagnostics.sort_by_key(|d| d.span.start);
        return Err(CliError::Load(kiln_pipeline::LoadError {
            source_file: source,
            diagnostics,
        }));
    }
    eprint!(
        "{}",
        crate::diagnostics::render(&source, &loaded.warnings, crate::style::Palette::stderr())
    );
    Ok((source, loaded))
}

/// Loads and checks the plugins of a plan that is about to run, from the
/// components resolution verified: a plugin that cannot run is an error;
/// warnings go to stderr.
pub(crate) fn prepare_plugins(
    source: &SourceFile,
    plan: &kiln_pipeline::Plan,
    located: &Located,
    components: &plugin::pipeline::Components,
    artifacts: std::sync::Arc<dyn kiln_wasm::ArtifactAccess>,
) -> Result<crate::plugins::Prepared, CliError> {
    let mut prepared =
        crate::plugins::prepare(plan, &located.workspace, components, Some(artifacts));
    let (errors, warnings) = split(std::mem::take(&mut prepared.diagnostics));
    if !errors.is_empty() {
        let mut diagnostics = warnings;
        diagnostics.extend(errors);
        return Err(invalid(source.clone(), diagnostics));
    }
    eprint!(
        "{}",
        crate::diagnostics::render(source, &warnings, crate::style::Palette::stderr())
    );
    Ok(prepared)
}

/// Errors and warnings apart.
pub(crate) fn split(diagnostics: Vec<Diagnostic>) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
    diagnostics
        .into_iter()
        .partition(|d| d.severity == kiln_pipeline::Severity::Error)
}

/// A pipeline whose diagnostics include errors, sorted by position.
pub(crate) fn invalid(source: SourceFile, mut diagnostics: Vec<Diagnostic>) -> CliError {
    diagnostics.sort_by_key(|d| (d.span.start, d.span.end));
    CliError::Load(kiln_pipeline::LoadError {
        source_file: source,
        diagnostics,
    })
}

/// The process environment, skipping names or values that are not UTF-8
/// and the `KILN_SECRET_*` variables: those are secrets, which reach only
/// the steps that reference them (and `${KILN_SECRET_X}` in a pipeline
/// field would otherwise print a secret unmasked in `kiln plan`).
pub(crate) fn system_env() -> BTreeMap<String, String> {
    kiln_engine::process_env()
        .into_iter()
        .filter(|(k, _)| !crate::secrets::is_secret_variable(k))
        .collect()
}

/// Reads a pipeline file, refusing one over [`kiln_pipeline::MAX_FILE_BYTES`]
/// before reading it whole: a FIFO or `/dev/zero` must not hang kiln or
/// exhaust its memory.
fn read_pipeline(path: &std::path::Path) -> Result<String, CliError> {
    use std::io::Read;
    let io = |source| CliError::Io {
        path: path.to_owned(),
        source,
    };
    let limit = kiln_pipeline::MAX_FILE_BYTES as u64;
    let file = std::fs::File::open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    if metadata.is_file() && metadata.len() > limit {
        return Err(CliError::TooLarge {
            path: path.to_owned(),
            size: Some(metadata.len()),
        });
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(CliError::TooLarge {
            path: path.to_owned(),
            size: None,
        });
    }
    String::from_utf8(bytes)
        .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}
