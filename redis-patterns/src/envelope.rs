//! The stored form of a cached value.
//!
//! Every value `#[cached]` writes is a 16-byte header followed by the value's JSON:
//!
//! | bytes  | field        | meaning                                                        |
//! |--------|--------------|----------------------------------------------------------------|
//! | 0      | magic `0xFE` | never the first byte of UTF-8 text, so a foreign value is seen |
//! | 1      | version `1`  | layout of this header                                          |
//! | 2      | codec `1`    | payload encoding: 1 = JSON (`serde_json`)                      |
//! | 3      | reserved `0` |                                                                |
//! | 4..8   | `delta_ms`   | u32 LE: how long the function took (XFetch's *delta*)          |
//! | 8..16  | `expires_ms` | u64 LE: Unix time in ms when the entry expires (XFetch)        |
//! | 16..   | payload      | the value as JSON                                              |
//!
//! `expires_ms` is computed from the same TTL the key is stored with, `ttl_jitter` included,
//! so that XFetch aims at the moment the entry really expires.
//!
//! The header lets `stampede = "early"` decide on recomputation from the value alone, without
//! a second round trip for `PTTL`. A value that does not start with this header, or whose
//! JSON does not decode into the function's type (e.g. after a deploy changed the struct), is
//! treated as a miss and overwritten.

use std::time::Duration;

use serde::Serialize;

const MAGIC: u8 = 0xFE;
const VERSION: u8 = 1;
const CODEC_JSON: u8 = 1;
pub(crate) const HEADER_LEN: usize = 16;

/// What the header says about a stored value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub delta_ms: u32,
    pub expires_ms: u64,
}

/// Serializes `value` behind a header, in one allocation.
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    delta: Duration,
    ttl: Duration,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut buf = Vec::with_capacity(128);
    buf.extend_from_slice(&[MAGIC, VERSION, CODEC_JSON, 0]);
    let delta_ms = u32::try_from(delta.as_millis()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&delta_ms.to_le_bytes());
    let ttl_ms = crate::util::whole_millis(ttl);
    buf.extend_from_slice(&now_ms().saturating_add(ttl_ms).to_le_bytes());
    serde_json::to_writer(&mut buf, value)?;
    Ok(buf)
}

/// Splits a stored value into header and payload, or `None` when it is not an envelope this
/// version understands.
pub(crate) fn decode(stored: &[u8]) -> Option<(Header, &[u8])> {
    if stored.len() < HEADER_LEN
        || stored[0] != MAGIC
        || stored[1] != VERSION
        || stored[2] != CODEC_JSON
    {
        return None;
    }
    let delta_ms = u32::from_le_bytes(stored[4..8].try_into().ok()?);
    let expires_ms = u64::from_le_bytes(stored[8..16].try_into().ok()?);
    Some((
        Header {
            delta_ms,
            expires_ms,
        },
        &stored[HEADER_LEN..],
    ))
}

/// Milliseconds since the Unix epoch by this machine's clock.
pub(crate) fn now_ms() -> u64 {
    crate::util::whole_millis(crate::util::unix_time())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let before = now_ms();
        let bytes = encode(
            &vec![1, 2, 3],
            Duration::from_millis(42),
            Duration::from_secs(10),
        )
        .unwrap();
        let (header, payload) = decode(&bytes).unwrap();
        assert_eq!(header.delta_ms, 42);
        assert!(header.expires_ms >= before + 10_000 && header.expires_ms <= now_ms() + 10_000);
        assert_eq!(payload, b"[1,2,3]");
    }

    #[test]
    fn foreign_values_are_rejected() {
        assert!(decode(b"").is_none());
        assert!(decode(b"{\"plain\":\"json value\"}").is_none());
        let mut bytes = encode(&1, Duration::ZERO, Duration::from_secs(1)).unwrap();
        bytes[1] = 99;
        assert!(decode(&bytes).is_none());
    }
}
