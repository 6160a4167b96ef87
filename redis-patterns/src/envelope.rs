//! The stored form of a cached value.
//!
//! Every value `#[cached]` writes is a 16-byte header followed by the encoded value:
//!
//! | bytes  | field        | meaning                                                        |
//! |--------|--------------|----------------------------------------------------------------|
//! | 0      | magic `0xFE` | never the first byte of UTF-8 text, so a foreign value is seen |
//! | 1      | version `1`  | layout of this header                                          |
//! | 2      | codec        | payload encoding: 1 JSON, 2 MessagePack, 3 postcard ([`Codec`]) |
//! | 3      | flags        | bit 0: the payload is LZ4-compressed (size-prepended block)    |
//! | 4..8   | `delta_ms`   | u32 LE: how long the function took (XFetch's *delta*)          |
//! | 8..16  | `expires_ms` | u64 LE: Unix time in ms when the entry expires (XFetch)        |
//! | 16..   | payload      | the value in that codec                                        |
//!
//! `expires_ms` is computed from the same TTL the key is stored with, `ttl_jitter` included,
//! so that XFetch aims at the moment the entry really expires.
//!
//! The header lets `stampede = "early"` decide on recomputation from the value alone, without
//! a second round trip for `PTTL`. A value that does not start with this header, or whose
//! payload does not decode into the function's type (e.g. after a deploy changed the struct),
//! is treated as a miss and overwritten.
//!
//! A value is decoded with the codec its header names, whatever the function or client is
//! configured to write: a deploy that changes the codec (or compression) still reads the
//! entries already stored. A compressed payload says how large it is; one that claims more
//! than LZ4 can expand to, or more than a Redis string can hold, is not decompressed.

use std::borrow::Cow;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

const MAGIC: u8 = 0xFE;
const VERSION: u8 = 1;
const HEADER_LEN: usize = 16;
/// Flag bit: the payload is an LZ4 block with its decompressed size prepended.
const LZ4: u8 = 1;
/// A Redis string holds at most 512 MiB.
const LARGEST_PAYLOAD: usize = 512 << 20;
/// LZ4 expands a block at most about 255-fold.
const LZ4_MAX_RATIO: usize = 255;

/// How `#[cached]` encodes values: per function with `codec = "…"`, or for a whole client with
/// [`Config::codec`](crate::Config::codec). Reading always follows the codec the stored entry
/// names, so switching codecs needs no migration: old entries are read until they expire.
///
/// ```
/// use redis_patterns::cache::Codec;
/// let config = redis_patterns::Config::from_url("mem://")?.codec(Codec::MessagePack);
/// # Ok::<(), redis_patterns::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Codec {
    /// JSON (`serde_json`): readable with `redis-cli`, the default.
    #[default]
    Json,
    /// MessagePack (`rmp-serde`) with field names, so that adding a field with a default
    /// stays compatible, as with JSON; smaller, and faster to decode.
    MessagePack,
    /// postcard: compact binary without field names, the smallest and fastest. Not
    /// self-describing: after a change of the type (even an added field), old entries do not
    /// decode and are recomputed, as misses.
    Postcard,
}

impl Codec {
    /// Its byte in the envelope header.
    const fn byte(self) -> u8 {
        match self {
            Codec::Json => 1,
            Codec::MessagePack => 2,
            Codec::Postcard => 3,
        }
    }

    fn from_byte(byte: u8) -> Option<Codec> {
        match byte {
            1 => Some(Codec::Json),
            2 => Some(Codec::MessagePack),
            3 => Some(Codec::Postcard),
            _ => None,
        }
    }

    /// Appends `value` to `buf` in this codec.
    fn write<T: Serialize + ?Sized>(self, buf: &mut Vec<u8>, value: &T) -> Result<(), EncodeError> {
        match self {
            Codec::Json => serde_json::to_writer(buf, value).map_err(EncodeError::from),
            Codec::MessagePack => value
                .serialize(&mut rmp_serde::Serializer::new(buf).with_struct_map())
                .map_err(EncodeError::from),
            Codec::Postcard => {
                *buf = postcard::to_extend(value, std::mem::take(buf))?;
                Ok(())
            }
        }
    }

    /// `payload` decoded from this codec, or `None` when it does not decode into `T`.
    pub(crate) fn read<T: DeserializeOwned>(self, payload: &[u8]) -> Option<T> {
        match self {
            Codec::Json => serde_json::from_slice(payload).ok(),
            Codec::MessagePack => rmp_serde::from_slice(payload).ok(),
            Codec::Postcard => postcard::from_bytes(payload).ok(),
        }
    }
}

/// Why a value could not be encoded; carried by [`Error::Serialize`](crate::Error::Serialize).
pub(crate) type EncodeError = Box<dyn std::error::Error + Send + Sync>;

/// How values are written: the codec, and the size above which payloads are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Encoding {
    pub codec: Codec,
    pub compress_above: Option<usize>,
}

/// What the header says about a stored value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub delta_ms: u32,
    pub expires_ms: u64,
    pub codec: Codec,
    pub flags: u8,
}

/// Serializes `value` behind a header, compressing the payload when it is larger than the
/// threshold and compression makes it smaller.
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    encoding: Encoding,
    delta: Duration,
    ttl: Duration,
) -> Result<Vec<u8>, EncodeError> {
    let mut buf = Vec::with_capacity(128);
    buf.extend_from_slice(&[MAGIC, VERSION, encoding.codec.byte(), 0]);
    let delta_ms = u32::try_from(delta.as_millis()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&delta_ms.to_le_bytes());
    let ttl_ms = crate::util::whole_millis(ttl);
    buf.extend_from_slice(&now_ms().saturating_add(ttl_ms).to_le_bytes());
    encoding.codec.write(&mut buf, value)?;
    if let Some(threshold) = encoding.compress_above
        && buf.len() - HEADER_LEN > threshold
    {
        let compressed = lz4_flex::block::compress_prepend_size(&buf[HEADER_LEN..]);
        if compressed.len() < buf.len() - HEADER_LEN {
            buf.truncate(HEADER_LEN);
            buf.extend_from_slice(&compressed);
            buf[3] |= LZ4;
        }
    }
    Ok(buf)
}

/// Splits a stored value into header and payload, or `None` when it is not an envelope this
/// version understands.
pub(crate) fn decode(stored: &[u8]) -> Option<(Header, &[u8])> {
    if stored.len() < HEADER_LEN || stored[0] != MAGIC || stored[1] != VERSION {
        return None;
    }
    let codec = Codec::from_byte(stored[2])?;
    let flags = stored[3];
    if flags & !LZ4 != 0 {
        return None;
    }
    let delta_ms = u32::from_le_bytes(stored[4..8].try_into().ok()?);
    let expires_ms = u64::from_le_bytes(stored[8..16].try_into().ok()?);
    Some((
        Header {
            delta_ms,
            expires_ms,
            codec,
            flags,
        },
        &stored[HEADER_LEN..],
    ))
}

/// The value of a stored envelope, decompressed if need be and decoded with the codec its
/// header names.
pub(crate) fn decode_value<T: DeserializeOwned>(stored: &[u8]) -> Option<(T, Header)> {
    let (header, payload) = decode(stored)?;
    let payload = if header.flags & LZ4 != 0 {
        Cow::Owned(decompress(payload)?)
    } else {
        Cow::Borrowed(payload)
    };
    Some((header.codec.read(&payload)?, header))
}

/// A size-prepended LZ4 block, decompressed, or `None` when it is corrupt or claims a size
/// LZ4 cannot produce from it (so a hostile value cannot make this allocate gigabytes).
fn decompress(block: &[u8]) -> Option<Vec<u8>> {
    let size = u32::from_le_bytes(block.get(..4)?.try_into().ok()?);
    let size = usize::try_from(size).ok()?;
    let limit = (block.len() - 4)
        .saturating_mul(LZ4_MAX_RATIO)
        .saturating_add(16)
        .min(LARGEST_PAYLOAD);
    if size > limit {
        return None;
    }
    lz4_flex::block::decompress(&block[4..], size).ok()
}

/// Milliseconds since the Unix epoch by this machine's clock.
pub(crate) fn now_ms() -> u64 {
    crate::util::whole_millis(crate::util::unix_time())
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Encoding = Encoding {
        codec: Codec::Json,
        compress_above: None,
    };

    #[test]
    fn round_trip() {
        let before = now_ms();
        let bytes = encode(
            &vec![1, 2, 3],
            JSON,
            Duration::from_millis(42),
            Duration::from_secs(10),
        )
        .unwrap();
        let (header, payload) = decode(&bytes).unwrap();
        assert_eq!(header.delta_ms, 42);
        assert_eq!(header.codec, Codec::Json);
        assert!(header.expires_ms >= before + 10_000 && header.expires_ms <= now_ms() + 10_000);
        assert_eq!(payload, b"[1,2,3]");
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct V1 {
        id: u64,
        name: String,
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct V2 {
        id: u64,
        name: String,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[test]
    fn every_codec_round_trips_and_reads_by_the_stored_byte() {
        let v1 = V1 {
            id: 7,
            name: "lamp".into(),
        };
        for codec in [Codec::Json, Codec::MessagePack, Codec::Postcard] {
            let encoding = Encoding {
                codec,
                compress_above: None,
            };
            let bytes = encode(&v1, encoding, Duration::ZERO, Duration::from_secs(1)).unwrap();
            assert_eq!(decode(&bytes).unwrap().0.codec, codec);
            let (back, _) = decode_value::<V1>(&bytes).unwrap();
            assert_eq!(back, v1);
            // Named fields: a field added with a default still reads old entries.
            if codec != Codec::Postcard {
                let (v2, _) = decode_value::<V2>(&bytes).unwrap();
                assert_eq!((v2.id, v2.name.as_str(), v2.tags.len()), (7, "lamp", 0));
            }
            // A payload of another type is a miss, not a wrong value.
            assert!(decode_value::<Vec<u64>>(&bytes).is_none());
        }
        let size = |codec| {
            let encoding = Encoding {
                codec,
                compress_above: None,
            };
            encode(&v1, encoding, Duration::ZERO, Duration::from_secs(1))
                .unwrap()
                .len()
        };
        let (json, msgpack, postcard) = (
            size(Codec::Json),
            size(Codec::MessagePack),
            size(Codec::Postcard),
        );
        assert!(
            postcard < msgpack && msgpack < json,
            "{postcard} {msgpack} {json}"
        );
    }

    #[test]
    fn large_payloads_are_compressed_and_read_back() {
        let value: Vec<String> = (0..200)
            .map(|i| format!("repeated text {}", i % 7))
            .collect();
        let plain = encode(&value, JSON, Duration::ZERO, Duration::from_secs(1)).unwrap();
        let compressing = Encoding {
            codec: Codec::Json,
            compress_above: Some(256),
        };
        let small = encode(&value, compressing, Duration::ZERO, Duration::from_secs(1)).unwrap();
        assert!(
            small.len() * 3 < plain.len(),
            "{} vs {}",
            small.len(),
            plain.len()
        );
        assert_eq!(small[3], LZ4);
        assert_eq!(decode_value::<Vec<String>>(&small).unwrap().0, value);
        // Below the threshold: stored as is.
        let tiny = encode(&1u8, compressing, Duration::ZERO, Duration::from_secs(1)).unwrap();
        assert_eq!(tiny[3], 0);
    }

    #[test]
    fn a_compressed_payload_cannot_claim_more_than_lz4_can_produce() {
        let value = vec![0u8; 4096];
        let compressing = Encoding {
            codec: Codec::Postcard,
            compress_above: Some(64),
        };
        let encoded =
            || encode(&value, compressing, Duration::ZERO, Duration::from_secs(1)).unwrap();
        assert_eq!(decode_value::<Vec<u8>>(&encoded()).unwrap().0, value);
        // Claims 4 GiB of output.
        let mut bytes = encoded();
        bytes[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_value::<Vec<u8>>(&bytes).is_none());
        // A truncated block.
        let mut cut = encoded();
        cut.truncate(cut.len() - 3);
        assert!(decode_value::<Vec<u8>>(&cut).is_none());
        // Unknown flags.
        let mut flagged = encode(&1, JSON, Duration::ZERO, Duration::from_secs(1)).unwrap();
        flagged[3] = 0x80;
        assert!(decode(&flagged).is_none());
    }

    #[test]
    fn an_unknown_codec_byte_is_not_an_envelope() {
        let mut bytes = encode(&1, JSON, Duration::ZERO, Duration::from_secs(1)).unwrap();
        bytes[2] = 200;
        assert!(decode(&bytes).is_none());
    }

    #[test]
    fn foreign_values_are_rejected() {
        assert!(decode(b"").is_none());
        assert!(decode(b"{\"plain\":\"json value\"}").is_none());
        let mut bytes = encode(&1, JSON, Duration::ZERO, Duration::from_secs(1)).unwrap();
        bytes[1] = 99;
        assert!(decode(&bytes).is_none());
    }
}
