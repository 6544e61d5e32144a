//! Digests in our JSON files are written `sha256:<64 hex>`, the form OCI
//! and `docker` print, so a pin can be compared with a registry by eye.

use kiln_store::cas::Digest;
use serde::{Deserialize, Deserializer, Serializer};

pub(crate) fn serialize<S: Serializer>(digest: &Digest, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("sha256:{digest}"))
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "`{text}` is not `sha256:` and 64 lowercase hex characters"
        ))
    })
}

/// `sha256:<64 lowercase hex>` → digest.
pub(crate) fn parse(text: &str) -> Option<Digest> {
    crate::reference::parse_hex(text.strip_prefix("sha256:")?)
}

pub(crate) mod option {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        digest: &Option<Digest>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match digest {
            Some(digest) => super::serialize(digest, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Digest>, D::Error> {
        super::deserialize(d).map(Some)
    }
}
