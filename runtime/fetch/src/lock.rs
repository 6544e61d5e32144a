//! `kiln.lock`: every plugin reference of a pipeline pinned to the SHA-256
//! of its component, and the pure rules for what a run does when a
//! reference and its pin disagree.
//!
//! The file is JSON, written deterministically (keys sorted, two-space
//! indent, one trailing newline) so it diffs well and two machines that pin
//! the same things write the same bytes:
//!
//! ```json
//! {
//!   "version": 1,
//!   "plugins": {
//!     "./plugins/notify.wasm": {
//!       "digest": "sha256:…"
//!     },
//!     "oci://127.0.0.1:5000/acme/notify:1": {
//!       "digest": "sha256:…",
//!       "manifest": "sha256:…"
//!     }
//!   }
//! }
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use kiln_store::cas::Digest;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The lockfile's name, beside the pipeline file.
pub const LOCK_FILE: &str = "kiln.lock";

/// The format version this kiln reads and writes.
const VERSION: u32 = 1;

/// One pinned reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    /// SHA-256 of the component bytes: what runs.
    #[serde(with = "crate::digest_text")]
    pub digest: Digest,
    /// For OCI references: the manifest the tag pointed at when pinned.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::digest_text::option"
    )]
    pub manifest: Option<Digest>,
    /// For bundled plugins: the exact version (`1.2.0`) that was pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl Pin {
    /// A pin of just a digest.
    pub fn new(digest: Digest) -> Self {
        Self {
            digest,
            manifest: None,
            version: None,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    version: u32,
    #[serde(default)]
    plugins: BTreeMap<String, Pin>,
}

/// `kiln.lock`, loaded. Entries are never dropped implicitly: pins of
/// references the current pipeline does not use (another pipeline in the
/// same directory, a removed step) stay until `kiln plugin remove` or a
/// hand edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockfile {
    path: PathBuf,
    pins: BTreeMap<String, Pin>,
    dirty: bool,
}

impl Lockfile {
    /// `kiln.lock` in `dir` (the directory holding the pipeline file).
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(LOCK_FILE)
    }

    /// An empty lockfile that will be written to `path`.
    pub fn empty(path: PathBuf) -> Self {
        Self {
            path,
            pins: BTreeMap::new(),
            dirty: false,
        }
    }

    /// Loads `path`; a missing file is an empty lockfile.
    pub fn load(path: &Path) -> Result<Self> {
        match fs::read_to_string(path) {
            Ok(text) => Self::parse(path.to_owned(), &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::empty(path.to_owned())),
            Err(source) => Err(Error::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses lockfile text (as read from `path`).
    pub fn parse(path: PathBuf, text: &str) -> Result<Self> {
        let bad = |problem: String| Error::BadFile {
            path: path.clone(),
            problem,
            then: ", then re-pin with `kiln run`",
        };
        let doc: Document = serde_json::from_str(text).map_err(|e| {
            bad(format!(
                "{} at line {} column {}",
                strip_position(&e),
                e.line(),
                e.column()
            ))
        })?;
        if doc.version != VERSION {
            return Err(bad(format!(
                "format version {} is not {VERSION}, the one this kiln understands",
                doc.version
            )));
        }
        Ok(Self {
            path,
            pins: doc.plugins,
            dirty: false,
        })
    }

    /// Where this lockfile lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pin of `reference` (its canonical text), if any.
    pub fn get(&self, reference: &str) -> Option<&Pin> {
        self.pins.get(reference)
    }

    /// Every pin, sorted by reference.
    pub fn pins(&self) -> impl Iterator<Item = (&str, &Pin)> {
        self.pins.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Pins `reference`; returns the previous pin if it differed.
    pub fn set(&mut self, reference: &str, pin: Pin) -> Option<Pin> {
        if self.pins.get(reference) == Some(&pin) {
            return None;
        }
        self.dirty = true;
        self.pins.insert(reference.to_owned(), pin)
    }

    /// Drops the pin of `reference`.
    pub fn remove(&mut self, reference: &str) -> Option<Pin> {
        let removed = self.pins.remove(reference);
        self.dirty |= removed.is_some();
        removed
    }

    /// Whether there are changes [`Lockfile::save`] would write.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The file's exact text.
    pub fn to_text(&self) -> String {
        let doc = Document {
            version: VERSION,
            plugins: self.pins.clone(),
        };
        let mut text = serde_json::to_string_pretty(&doc).expect("pins serialize");
        text.push('\n');
        text
    }

    /// Writes the file if anything changed: temp file beside it, fsync,
    /// rename, so a crash leaves the old or the new lockfile, never half.
    pub fn save(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        write_atomic(&self.path, self.to_text().as_bytes())?;
        self.dirty = false;
        Ok(())
    }
}

/// serde_json appends " at line L column C"; we print our own.
fn strip_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// temp → fsync → rename → fsync(dir).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map_err(io)
}

/// How a kind of reference may drift from its pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drift {
    /// Re-observed on every use and under the user's control: local files
    /// and the plugins bundled with kiln. Without `--locked` the pin follows
    /// the content (and says so).
    Follows,
    /// A tag in a registry: resolved once, then the lock wins. A tag that
    /// moved is never followed silently.
    Tag,
    /// The reference names its own digest (`#sha256=`, `@sha256:`): the
    /// pin can only disagree if the lockfile was edited by hand.
    Fixed,
}

/// Whether `kiln.lock` may change during this command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `kiln run`, `kiln plugin install`: new references are pinned,
    /// followed ones re-pinned.
    Update,
    /// `--locked`: the lock must already describe every reference exactly.
    Locked,
}

/// What to do with the lock after observing a reference's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The pin matches; nothing to write.
    Unchanged,
    /// The component matches, only the metadata (manifest, version) moved:
    /// rewrite the pin quietly.
    Refresh(Pin),
    /// A new reference: pin it.
    Record(Pin),
    /// A followed reference changed: re-pin it, and tell the user.
    Update {
        /// The digest pinned before.
        old: Digest,
        /// The new pin.
        new: Pin,
    },
}

/// Why the observed content may not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `--locked` and no pin.
    Unpinned,
    /// The content differs from the pin.
    Mismatch {
        /// The pinned digest.
        pinned: Digest,
        /// The digest observed now.
        resolved: Digest,
        /// How to accept the change.
        help: String,
    },
}

/// The lockfile rule, as a pure function: given how `reference` may drift,
/// its pin (if any), the pin its content would get now, and the mode.
pub fn decide(
    reference: &str,
    drift: Drift,
    pinned: Option<&Pin>,
    observed: &Pin,
    mode: Mode,
) -> std::result::Result<Verdict, Refusal> {
    let Some(pinned) = pinned else {
        return match mode {
            Mode::Update => Ok(Verdict::Record(observed.clone())),
            Mode::Locked => Err(Refusal::Unpinned),
        };
    };
    if pinned.digest == observed.digest {
        return Ok(match mode {
            Mode::Update if pinned != observed => Verdict::Refresh(observed.clone()),
            _ => Verdict::Unchanged,
        });
    }
    let mismatch = |help: String| Refusal::Mismatch {
        pinned: pinned.digest,
        resolved: observed.digest,
        help,
    };
    match (drift, mode) {
        (Drift::Follows, Mode::Update) => Ok(Verdict::Update {
            old: pinned.digest,
            new: observed.clone(),
        }),
        (Drift::Follows, Mode::Locked) => Err(mismatch(format!(
            "if the change is intended, re-pin it with `kiln plugin install {reference}` \
             (or run once without `--locked`) and commit `kiln.lock`"
        ))),
        (Drift::Tag, _) => Err(mismatch(format!(
            "the tag now names other content; if that is intended, pin it with \
             `kiln plugin install {reference}` (or delete its entry from `kiln.lock`)"
        ))),
        (Drift::Fixed, _) => Err(mismatch(
            "the reference names its own digest, so this pin is wrong: delete its entry from `kiln.lock`"
                .to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests;
