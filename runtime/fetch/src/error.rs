//! Errors of plugin resolution: bad references, fetch failures, digest
//! mismatches, store damage and lockfile disagreements.

use std::io;
use std::path::PathBuf;

use kiln_store::cas::Digest;

/// A `uses:` string that is not a plugin reference. Pure: the CLI turns it
/// into a diagnostic at the step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin reference `{reference}`: {problem}; {help}")]
pub struct ReferenceError {
    /// The text as written.
    pub reference: String,
    /// What is wrong with it.
    pub problem: String,
    /// How to write it instead.
    pub help: String,
}

/// Something resolution, the store or the lockfile could not do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The reference does not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// A local `.wasm` file could not be read.
    #[error("cannot read plugin `{reference}` at `{}`", path.display())]
    Local {
        /// The reference as written.
        reference: String,
        /// The resolved path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// No bundled plugin has this name and major version.
    #[error(
        "`kiln/{name}@{major}` is not bundled with this kiln; \
         check the name and major version (docs/plugins.md lists the bundled plugins)"
    )]
    NotBundled {
        /// The plugin name.
        name: String,
        /// The major version asked for.
        major: u32,
    },
    /// The bytes are not WebAssembly at all (an HTML error page, a tarball…).
    #[error(
        "`{reference}` is not a WebAssembly file: it starts with {start}; \
         point the reference at a `.wasm` component"
    )]
    NotWasm {
        /// The reference.
        reference: String,
        /// The first bytes, escaped.
        start: String,
    },
    /// The HTTP request failed before a response (connection, TLS, timeout).
    #[error("cannot fetch `{url}`")]
    Http {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: Box<ureq::Error>,
    },
    /// The server answered with an error status.
    #[error("`{url}` answered HTTP {status}{detail}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// `: <the server's message>` (may be empty).
        detail: String,
    },
    /// The registry wants credentials we do not have (or refused ours).
    #[error(
        "registry `{registry}` refused access to `{repository}` (HTTP {status}); \
         log in with `docker login {registry}` (kiln reads `~/.docker/config.json`)"
    )]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// The repository.
        repository: String,
        /// 401 or 403.
        status: u16,
    },
    /// A download is larger than kiln accepts.
    #[error("`{url}` is larger than {limit} bytes, the most kiln downloads for one {what}")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
        /// `component` or `manifest`.
        what: &'static str,
    },
    /// Downloaded or stored content does not hash to the digest that names
    /// it. Nothing was stored or run.
    #[error(
        "`{reference}`: the {what} hashes to `sha256:{actual}`, but `sha256:{expected}` was required; \
         it was not stored and will not run"
    )]
    DigestMismatch {
        /// The reference.
        reference: String,
        /// `downloaded component`, `manifest`, `layer`.
        what: &'static str,
        /// The digest required.
        expected: Digest,
        /// What the content hashes to.
        actual: Digest,
    },
    /// The OCI manifest is not a Wasm artifact (or not a manifest).
    #[error("`{reference}` is not a Wasm component artifact: {problem}")]
    NotWasmArtifact {
        /// The reference.
        reference: String,
        /// What was found instead.
        problem: String,
    },
    /// No directory for the user plugin store could be found.
    #[error("cannot place the plugin store: set `KILN_HOME` (or `XDG_DATA_HOME`, or `HOME`)")]
    NoHome,
    /// A stored plugin blob failed verification: it is never served.
    #[error(
        "plugin blob `sha256:{digest}` in the store is corrupt (its content hashes to `sha256:{actual}`); \
         it was not run: reinstall it with `kiln plugin install`, and `kiln plugin verify` lists every damaged blob"
    )]
    Corrupt {
        /// The blob's name.
        digest: Digest,
        /// What it hashes to now.
        actual: Digest,
    },
    /// A pinned or indexed blob is not in the store.
    #[error("plugin blob `sha256:{digest}` is not in the store at `{}`", store.display())]
    MissingBlob {
        /// The blob.
        digest: Digest,
        /// The store directory.
        store: PathBuf,
    },
    /// The blob store failed (I/O, disk full).
    #[error("plugin store")]
    Store(#[source] kiln_store::cas::Error),
    /// A JSON file of ours (the store index, `kiln.lock`) is unreadable.
    #[error("cannot read `{}`: {problem}; fix it or delete it{then}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column when JSON is malformed.
        problem: String,
        /// What deleting costs (`, then re-pin with `kiln run``).
        then: &'static str,
    },
    /// Reading or writing one of our files failed.
    #[error("cannot access `{}`", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `--locked`: a reference has no pin.
    #[error(
        "`{reference}` is not pinned in `{}`; pin it with `kiln plugin install {reference}` \
         (or run once without `--locked`)",
        lock.display()
    )]
    Unpinned {
        /// The reference.
        reference: String,
        /// The lockfile.
        lock: PathBuf,
    },
    /// The reference resolves to other content than its pin. Never runs.
    #[error(transparent)]
    PinMismatch(Box<PinMismatch>),
}

/// A reference whose content is not what `kiln.lock` pins.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{reference}` resolves to `sha256:{resolved}`, but `{}` pins `sha256:{pinned}`; {help}",
    lock.display()
)]
pub struct PinMismatch {
    /// The reference.
    pub reference: String,
    /// The lockfile.
    pub lock: PathBuf,
    /// The digest in the lockfile.
    pub pinned: Digest,
    /// The digest the reference resolves to now.
    pub resolved: Digest,
    /// How to accept the change.
    pub help: String,
}

impl Error {
    /// Maps a blob-store error, giving corruption its plugin-specific advice.
    pub(crate) fn from_store(err: kiln_store::cas::Error) -> Self {
        match err {
            kiln_store::cas::Error::Corrupt { digest, actual } => Error::Corrupt { digest, actual },
            other => Error::Store(other),
        }
    }
}

/// Result of plugin resolution.
pub type Result<T, E = Error> = std::result::Result<T, E>;
