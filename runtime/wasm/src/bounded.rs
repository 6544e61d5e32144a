//! Values a guest hands the host, bounded while they are read out of its
//! memory.
//!
//! The generated bindings copy a returned list or string whole before the
//! host sees it, and a list's entries may all point at the same bytes: a
//! 1,000-entry list of one 200 MiB string is 200 GB of host allocations
//! from 200 MiB of guest memory. The wrappers here have the same canonical
//! ABI as `string` and `list<T>` and check lengths (read from the guest's
//! memory, where the lift finds them) before anything is copied. The lift
//! must do it: the guest frees its result (post-return) as soon as the call
//! returns, so a lazy view read afterwards reads freed memory.

use wasmtime::ValRaw;
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Lift, WasmStr};

use crate::bindings::v0_1::types::{FsAccess, KeyValue};
use crate::metadata::{Capability, InputSpec, Metadata, OutputSpec};

/// Outputs one step may return.
pub(crate) const MAX_OUTPUTS: usize = 1000;
/// Bytes of all of one step's output keys and values together.
pub(crate) const MAX_OUTPUT_BYTES: usize = 1 << 20;
/// Bytes kept of an `action-error` message or a `host.log` line.
pub(crate) const MAX_MESSAGE: usize = 64 << 10;
/// Entries of each of the metadata's `inputs`, `outputs`, `capabilities`.
pub(crate) const MAX_METADATA_ENTRIES: usize = 256;
/// Bytes of each metadata string (a name, a description, a default).
pub(crate) const MAX_METADATA_STRING: usize = 16 << 10;

/// A guest value over a limit: the call fails with this, and the caller
/// says what it was reading.
#[derive(Debug)]
pub(crate) struct TooBig(pub String);

impl std::fmt::Display for TooBig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TooBig {}

/// The `(pointer, length)` pair a string or a list is stored as.
fn pointer_pair(bytes: &[u8]) -> (usize, usize) {
    let word = |at: usize| {
        let mut le = [0u8; 4];
        le.copy_from_slice(&bytes[at..at + 4]);
        u32::from_le_bytes(le) as usize
    };
    (word(0), word(4))
}

/// The same pair in flat (stack) form.
fn flat_pair(src: &[ValRaw; 2]) -> (usize, usize) {
    (src[0].get_u32() as usize, src[1].get_u32() as usize)
}

/// Forwards `ComponentType` to `$like` (the same canonical ABI).
macro_rules! like {
    ($like:ty) => {
        type Lower = <$like as ComponentType>::Lower;
        const ABI: CanonicalAbiInfo = <$like as ComponentType>::ABI;
        fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
            <$like as ComponentType>::typecheck(ty, types)
        }
    };
}

/// A `string` of at most `MAX` bytes; a longer one fails the call.
pub(crate) struct Str<const MAX: usize>(pub String);

// SAFETY: the ABI, lowered form and type check are `String`'s.
unsafe impl<const MAX: usize> ComponentType for Str<MAX> {
    like!(String);
}

impl<const MAX: usize> Str<MAX> {
    fn check(len: usize) -> wasmtime::Result<()> {
        if len > MAX {
            return Err(wasmtime::Error::new(TooBig(format!(
                "a string of {len} bytes, where at most {MAX} are allowed"
            ))));
        }
        Ok(())
    }
}

// SAFETY: delegates to `String` after reading the length.
unsafe impl<const MAX: usize> Lift for Str<MAX> {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        Self::check(flat_pair(src).1)?;
        String::linear_lift_from_flat(cx, ty, src).map(Self)
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        Self::check(pointer_pair(bytes).1)?;
        String::linear_lift_from_memory(cx, ty, bytes).map(Self)
    }
}

/// A `string` cut to its first `MAX` bytes with a marker: a message.
pub(crate) struct Cut<const MAX: usize>(pub String);

// SAFETY: the ABI, lowered form and type check are `String`'s.
unsafe impl<const MAX: usize> ComponentType for Cut<MAX> {
    like!(String);
}

impl<const MAX: usize> Cut<MAX> {
    /// The first `MAX` bytes of a too long string (bounds checked by
    /// lifting it as a `WasmStr` first). Assumes UTF-8, the encoding of
    /// every guest toolchain kiln knows; anything else reads as U+FFFD.
    fn head(cx: &LiftContext<'_>, ptr: usize, len: usize) -> Self {
        let head = cx.memory().get(ptr..ptr + MAX).unwrap_or_default();
        let text = String::from_utf8_lossy(head);
        let kept = cut(&text, MAX - 4).to_owned();
        Self(format!(
            "{kept}… [kiln: truncated, {} more bytes]",
            len - kept.len()
        ))
    }
}

// SAFETY: delegates to `WasmStr`/`String` for the checks and the copy.
unsafe impl<const MAX: usize> Lift for Cut<MAX> {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        let (ptr, len) = flat_pair(src);
        if len <= MAX {
            return String::linear_lift_from_flat(cx, ty, src).map(Self);
        }
        WasmStr::linear_lift_from_flat(cx, ty, src)?;
        Ok(Self::head(cx, ptr, len))
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        let (ptr, len) = pointer_pair(bytes);
        if len <= MAX {
            return String::linear_lift_from_memory(cx, ty, bytes).map(Self);
        }
        WasmStr::linear_lift_from_memory(cx, ty, bytes)?;
        Ok(Self::head(cx, ptr, len))
    }
}

/// A `list<T>` of at most `MAX` entries; a longer one fails the call.
pub(crate) struct List<T, const MAX: usize>(pub Vec<T>);

// SAFETY: the ABI, lowered form and type check are `Vec<T>`'s.
unsafe impl<T: ComponentType, const MAX: usize> ComponentType for List<T, MAX> {
    like!(Vec<T>);
}

impl<T, const MAX: usize> List<T, MAX> {
    fn check(len: usize) -> wasmtime::Result<()> {
        if len > MAX {
            return Err(wasmtime::Error::new(TooBig(format!(
                "a list of {len} entries, where at most {MAX} are allowed"
            ))));
        }
        Ok(())
    }
}

// SAFETY: delegates to `Vec<T>` after reading the length.
unsafe impl<T: Lift, const MAX: usize> Lift for List<T, MAX> {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        let (_, len) = flat_pair(src);
        Self::check(len)?;
        Vec::<T>::linear_lift_from_flat(cx, ty, src).map(Self)
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        Self::check(pointer_pair(bytes).1)?;
        Vec::<T>::linear_lift_from_memory(cx, ty, bytes).map(Self)
    }
}

/// A step's `list<key-value>` outputs: at most [`MAX_OUTPUTS`] entries of
/// at most [`MAX_OUTPUT_BYTES`] together, summed from the entries' lengths
/// before any is copied.
pub(crate) struct Outputs(pub Vec<(String, String)>);

// SAFETY: the ABI, lowered form and type check are `Vec<KeyValue>`'s.
unsafe impl ComponentType for Outputs {
    like!(Vec<KeyValue>);
}

impl Outputs {
    fn lift(cx: &mut LiftContext<'_>, ptr: usize, len: usize) -> wasmtime::Result<()> {
        if len > MAX_OUTPUTS {
            return Err(wasmtime::Error::new(TooBig(format!(
                "it returned {len} outputs; at most {MAX_OUTPUTS} are allowed"
            ))));
        }
        // A `key-value` is two pointer pairs: key at 0, value at 8.
        let size = <KeyValue as ComponentType>::SIZE32;
        let entries = cx
            .memory()
            .get(ptr..)
            .and_then(|m| m.get(..len * size))
            .ok_or_else(|| wasmtime::format_err!("list pointer/length out of bounds of memory"))?;
        let total: usize = entries
            .chunks_exact(size)
            .map(|e| {
                pointer_pair(&e[0..8])
                    .1
                    .saturating_add(pointer_pair(&e[8..16]).1)
            })
            .fold(0, usize::saturating_add);
        if total > MAX_OUTPUT_BYTES {
            return Err(wasmtime::Error::new(TooBig(format!(
                "its outputs are {total} bytes together; at most {MAX_OUTPUT_BYTES} are allowed"
            ))));
        }
        Ok(())
    }

    fn from(list: Vec<KeyValue>) -> Self {
        Self(list.into_iter().map(|kv| (kv.key, kv.value)).collect())
    }
}

// SAFETY: delegates to `Vec<KeyValue>` after reading the lengths.
unsafe impl Lift for Outputs {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        let (ptr, len) = flat_pair(src);
        Self::lift(cx, ptr, len)?;
        Vec::<KeyValue>::linear_lift_from_flat(cx, ty, src).map(Self::from)
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        let (ptr, len) = pointer_pair(bytes);
        Self::lift(cx, ptr, len)?;
        Vec::<KeyValue>::linear_lift_from_memory(cx, ty, bytes).map(Self::from)
    }
}

/// `action-error`, its message bounded.
#[derive(ComponentType, Lift)]
#[component(variant)]
pub(crate) enum RawActionError {
    #[component(name = "invalid-input")]
    InvalidInput(Cut<MAX_MESSAGE>),
    #[component(name = "failed")]
    Failed(Cut<MAX_MESSAGE>),
}

/// What `run` returns, bounded.
pub(crate) type RawRunResult = Result<Outputs, RawActionError>;

type MetaStr = Str<MAX_METADATA_STRING>;

/// `input-spec`, bounded.
#[derive(ComponentType, Lift)]
#[component(record)]
pub(crate) struct RawInputSpec {
    name: MetaStr,
    description: MetaStr,
    required: bool,
    default: Option<MetaStr>,
}

/// `output-spec`, bounded.
#[derive(ComponentType, Lift)]
#[component(record)]
pub(crate) struct RawOutputSpec {
    name: MetaStr,
    description: MetaStr,
}

/// `capability`, bounded.
#[derive(ComponentType, Lift)]
#[component(variant)]
pub(crate) enum RawCapability {
    #[component(name = "fs")]
    Fs(FsAccess),
    #[component(name = "network")]
    Network(MetaStr),
    #[component(name = "env")]
    Env(MetaStr),
    #[component(name = "secret")]
    Secret(MetaStr),
}

/// `metadata`, bounded.
#[derive(ComponentType, Lift)]
#[component(record)]
pub(crate) struct RawMetadata {
    name: MetaStr,
    version: MetaStr,
    description: MetaStr,
    inputs: List<RawInputSpec, MAX_METADATA_ENTRIES>,
    outputs: List<RawOutputSpec, MAX_METADATA_ENTRIES>,
    capabilities: List<RawCapability, MAX_METADATA_ENTRIES>,
}

impl From<RawMetadata> for Metadata {
    /// Names and descriptions are printed (`plugin inspect`, diagnostics):
    /// they are made inert here, once. A default is a value and is kept.
    fn from(m: RawMetadata) -> Self {
        Self {
            name: printable(&m.name.0),
            version: printable(&m.version.0),
            description: printable(&m.description.0),
            inputs: m
                .inputs
                .0
                .into_iter()
                .map(|i| InputSpec {
                    name: printable(&i.name.0),
                    description: printable(&i.description.0),
                    required: i.required,
                    default: i.default.map(|d| d.0),
                })
                .collect(),
            outputs: m
                .outputs
                .0
                .into_iter()
                .map(|o| OutputSpec {
                    name: printable(&o.name.0),
                    description: printable(&o.description.0),
                })
                .collect(),
            capabilities: m
                .capabilities
                .0
                .into_iter()
                .map(|c| match c {
                    RawCapability::Fs(access) => Capability::Fs {
                        write: matches!(access, FsAccess::Write),
                    },
                    RawCapability::Network(s) => Capability::Network(printable(&s.0)),
                    RawCapability::Env(s) => Capability::Env(printable(&s.0)),
                    RawCapability::Secret(s) => Capability::Secret(printable(&s.0)),
                })
                .collect(),
        }
    }
}

/// `text` if it has at most `max` bytes, else its first `max` bytes (to a
/// character boundary) and a marker that says how much was cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let kept = cut(text, max);
    format!(
        "{kept}… [kiln: truncated, {} more bytes]",
        text.len() - kept.len()
    )
}

/// The longest prefix of `text` of at most `max` bytes.
fn cut(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` with terminal control characters (escape sequences, carriage
/// returns, bidi overrides) shown escaped (`\u{1b}`), so text a plugin
/// chose cannot rewrite the terminal it is printed on.
pub fn printable(text: &str) -> String {
    let inert = |c: char| {
        !c.is_control() && !matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if text.chars().all(inert) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if inert(c) {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{printable, truncate};

    #[test]
    fn printable_escapes_terminal_controls_only() {
        assert_eq!(printable("plain — text"), "plain — text");
        assert_eq!(
            printable("a\x1b[2Jb\rc\u{202e}d"),
            "a\\u{1b}[2Jb\\u{d}c\\u{202e}d"
        );
    }

    #[test]
    fn truncate_keeps_short_text_and_marks_a_cut_at_a_char_boundary() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("héllo", 2), "h… [kiln: truncated, 5 more bytes]");
    }
}
