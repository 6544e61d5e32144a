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
mod tests {
    use super::*;

    fn digest(byte: u8) -> Digest {
        Digest::from_bytes([byte; 32])
    }

    fn pin(byte: u8) -> Pin {
        Pin::new(digest(byte))
    }

    const REF: &str = "oci://r.example/a:1";

    #[test]
    fn an_unpinned_reference_is_recorded_or_refused() {
        for drift in [Drift::Follows, Drift::Tag, Drift::Fixed] {
            assert_eq!(
                decide(REF, drift, None, &pin(1), Mode::Update),
                Ok(Verdict::Record(pin(1)))
            );
            assert_eq!(
                decide(REF, drift, None, &pin(1), Mode::Locked),
                Err(Refusal::Unpinned)
            );
        }
    }

    #[test]
    fn a_matching_pin_is_unchanged_in_every_mode() {
        for drift in [Drift::Follows, Drift::Tag, Drift::Fixed] {
            for mode in [Mode::Update, Mode::Locked] {
                assert_eq!(
                    decide(REF, drift, Some(&pin(1)), &pin(1), mode),
                    Ok(Verdict::Unchanged)
                );
            }
        }
    }

    #[test]
    fn metadata_refreshes_quietly_but_never_under_locked() {
        let mut observed = pin(1);
        observed.manifest = Some(digest(9));
        assert_eq!(
            decide(REF, Drift::Tag, Some(&pin(1)), &observed, Mode::Update),
            Ok(Verdict::Refresh(observed.clone()))
        );
        assert_eq!(
            decide(REF, Drift::Tag, Some(&pin(1)), &observed, Mode::Locked),
            Ok(Verdict::Unchanged)
        );
    }

    #[test]
    fn a_followed_reference_is_repinned_unless_locked() {
        assert_eq!(
            decide(
                "./a.wasm",
                Drift::Follows,
                Some(&pin(1)),
                &pin(2),
                Mode::Update
            ),
            Ok(Verdict::Update {
                old: digest(1),
                new: pin(2)
            })
        );
        assert_eq!(
            decide(
                "./a.wasm",
                Drift::Follows,
                Some(&pin(1)),
                &pin(2),
                Mode::Locked
            ),
            Err(Refusal::Mismatch {
                pinned: digest(1),
                resolved: digest(2),
                help: "if the change is intended, re-pin it with `kiln plugin install ./a.wasm` \
                       (or run once without `--locked`) and commit `kiln.lock`"
                    .into()
            })
        );
    }

    #[test]
    fn a_moved_tag_is_refused_in_both_modes() {
        for mode in [Mode::Update, Mode::Locked] {
            assert_eq!(
                decide(REF, Drift::Tag, Some(&pin(1)), &pin(2), mode),
                Err(Refusal::Mismatch {
                    pinned: digest(1),
                    resolved: digest(2),
                    help: format!(
                        "the tag now names other content; if that is intended, pin it with \
                         `kiln plugin install {REF}` (or delete its entry from `kiln.lock`)"
                    )
                })
            );
        }
    }

    #[test]
    fn a_wrong_pin_of_a_digest_reference_is_refused() {
        for mode in [Mode::Update, Mode::Locked] {
            assert_eq!(
                decide(REF, Drift::Fixed, Some(&pin(1)), &pin(2), mode),
                Err(Refusal::Mismatch {
                    pinned: digest(1),
                    resolved: digest(2),
                    help: "the reference names its own digest, so this pin is wrong: \
                           delete its entry from `kiln.lock`"
                        .into()
                })
            );
        }
    }

    #[test]
    fn the_file_is_deterministic_and_round_trips() {
        let mut lock = Lockfile::empty("kiln.lock".into());
        let mut oci = pin(0xab);
        oci.manifest = Some(digest(0xcd));
        lock.set("oci://r/a:1", oci);
        let mut bundled = pin(1);
        bundled.version = Some("1.2.0".into());
        lock.set("kiln/render@1", bundled);
        lock.set("./a.wasm", pin(2));
        let text = lock.to_text();
        let ab = "ab".repeat(32);
        let cd = "cd".repeat(32);
        let one = "01".repeat(32);
        let two = "02".repeat(32);
        assert_eq!(
            text,
            format!(
                "{{\n  \"version\": 1,\n  \"plugins\": {{\n    \"./a.wasm\": {{\n      \"digest\": \"sha256:{two}\"\n    }},\n    \
                 \"kiln/render@1\": {{\n      \"digest\": \"sha256:{one}\",\n      \"version\": \"1.2.0\"\n    }},\n    \
                 \"oci://r/a:1\": {{\n      \"digest\": \"sha256:{ab}\",\n      \"manifest\": \"sha256:{cd}\"\n    }}\n  }}\n}}\n"
            )
        );
        let back = Lockfile::parse("kiln.lock".into(), &text).unwrap();
        assert_eq!(back.to_text(), text);
        assert_eq!(back.get("./a.wasm"), Some(&pin(2)));
    }

    #[test]
    fn set_and_remove_track_changes() {
        let mut lock = Lockfile::empty("kiln.lock".into());
        assert!(!lock.is_dirty());
        assert_eq!(lock.set("a", pin(1)), None);
        assert!(lock.is_dirty());
        lock.dirty = false;
        assert_eq!(lock.set("a", pin(1)), None);
        assert!(!lock.is_dirty(), "setting the same pin changes nothing");
        assert_eq!(lock.set("a", pin(2)), Some(pin(1)));
        assert_eq!(lock.remove("a"), Some(pin(2)));
        assert_eq!(lock.remove("a"), None);
    }

    #[test]
    fn bad_files_say_where_and_what_to_do() {
        let err = Lockfile::parse(
            "ci/kiln.lock".into(),
            "{\n  \"version\": 1,\n  \"plugins\": {\"a\": {\"digest\": \"sha256:xyz\"}}\n}",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read `ci/kiln.lock`: `sha256:xyz` is not `sha256:` and 64 lowercase hex characters at line 3 column 43; \
             fix it or delete it, then re-pin with `kiln run`"
        );
        let err = Lockfile::parse("kiln.lock".into(), "{\"version\": 2}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read `kiln.lock`: format version 2 is not 1, the one this kiln understands; \
             fix it or delete it, then re-pin with `kiln run`"
        );
        let err =
            Lockfile::parse("kiln.lock".into(), "{\"version\": 1, \"pins\": {}}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read `kiln.lock`: unknown field `pins`, expected `version` or `plugins` at line 1 column 21; \
             fix it or delete it, then re-pin with `kiln run`"
        );
    }

    #[test]
    fn load_and_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = Lockfile::path_in(dir.path());
        let mut lock = Lockfile::load(&path).unwrap();
        assert_eq!(lock.pins().count(), 0);
        lock.save().unwrap();
        assert!(!path.exists(), "nothing changed, nothing written");
        lock.set("./a.wasm", pin(3));
        lock.save().unwrap();
        assert_eq!(
            Lockfile::load(&path).unwrap().get("./a.wasm"),
            Some(&pin(3))
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }
}
