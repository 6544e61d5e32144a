//! The SHA-256 digest that names a blob.

use std::fmt;
use std::str::FromStr;

use super::error::Error;

/// A SHA-256 digest: the name of a blob in the store.
///
/// Displayed and parsed as 64 lowercase hex characters, the form users see in
/// `kiln artifacts list` and pass to `kiln artifacts get`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest from its 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest as 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }

    /// Parses the hex form from a shard directory name (2 characters) and a
    /// file name (62 characters), as laid out under `objects/`.
    pub(crate) fn from_object_name(shard: &str, rest: &str) -> Option<Self> {
        if shard.len() != 2 || rest.len() != 62 {
            return None;
        }
        let mut hex = [0u8; 64];
        hex[..2].copy_from_slice(shard.as_bytes());
        hex[2..].copy_from_slice(rest.as_bytes());
        decode_hex(&hex)
    }
}

fn decode_hex(hex: &[u8; 64]) -> Option<Digest> {
    fn nibble(c: u8) -> Option<u8> {
        // Only lowercase: one spelling per blob, so a path never aliases another.
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = (nibble(hex[2 * i])? << 4) | nibble(hex[2 * i + 1])?;
    }
    Some(Digest(out))
}

impl FromStr for Digest {
    type Err = Error;

    /// Accepts 64 lowercase hex characters, optionally prefixed by `sha256:`.
    fn from_str(text: &str) -> Result<Self, Error> {
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        let invalid = || Error::InvalidDigest {
            text: text.to_owned(),
        };
        let hex: &[u8; 64] = hex.as_bytes().try_into().map_err(|_| invalid())?;
        decode_hex(hex).ok_or_else(invalid)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn hex_round_trips() {
        let digest: Digest = EMPTY.parse().unwrap();
        assert_eq!(digest.to_string(), EMPTY);
        assert_eq!(digest.as_bytes()[0], 0xe3);
        let prefixed: Digest = format!("sha256:{EMPTY}").parse().unwrap();
        assert_eq!(prefixed, digest);
    }

    #[test]
    fn rejects_uppercase_short_and_non_hex() {
        for text in [
            &EMPTY.to_uppercase()[..],
            &EMPTY[..63],
            "zz",
            &format!("{EMPTY}0"),
        ] {
            let err = text.parse::<Digest>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid digest `{text}`: expected 64 lowercase hex characters")
            );
        }
    }

    #[test]
    fn object_name_splits_after_two_characters() {
        let digest = Digest::from_object_name(&EMPTY[..2], &EMPTY[2..]).unwrap();
        assert_eq!(digest.to_string(), EMPTY);
        assert_eq!(
            Digest::from_object_name("e3", &EMPTY[..62]).map(|d| d.to_string()),
            Some(format!("e3{}", &EMPTY[..62]))
        );
        assert_eq!(Digest::from_object_name("e", &EMPTY[1..]), None);
        assert_eq!(Digest::from_object_name("E3", &EMPTY[2..]), None);
    }
}
