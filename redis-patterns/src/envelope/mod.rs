//! The stored form of a cached value.
//!
//! Every value `#[cached]` writes is a 28-byte header followed by the encoded value:
//!
//! | bytes  | field        | meaning                                                        |
//! |--------|--------------|----------------------------------------------------------------|
//! | 0      | magic `0xFE` | never the first byte of UTF-8 text, so a foreign value is seen |
//! | 1      | version `2`  | layout of this header                                          |
//! | 2      | codec        | payload encoding: 1 JSON, 2 MessagePack, 3 postcard ([`Codec`]) |
//! | 3      | flags        | bit 0: the payload is LZ4-compressed (size-prepended block)    |
//! | 4..8   | `delta_ms`   | u32 LE: how long the function took (XFetch's *delta*)          |
//! | 8..16  | `expires_ms` | u64 LE: Unix time in ms when the entry stops being fresh       |
//! | 16..20 | `schema`     | u32 LE: the value type's version (`version = N`) or fingerprint |
//! | 20..28 | `tags`       | u64 LE: stamp of its tags' versions when it was computed (0: none; see `cache/tags.rs`) |
//! | 28..   | payload      | the value in that codec                                        |
//!
//! `expires_ms` is computed from the same TTL the freshness is measured with, `ttl_jitter`
//! included, so that XFetch aims at the moment the entry really goes stale. The key itself lives
//! longer by the function's stale window (`stale_if_error`, `stale_while_revalidate`), during
//! which the entry is *stale*: kept to be served when the function fails, or while it is
//! refreshed in the background.
//!
//! The header lets `stampede = "early"` and the stale windows decide from the value alone,
//! without a second round trip for `PTTL`. A value that does not start with this header, that
//! was written for another `schema` or before its tags were invalidated, or whose payload does
//! not decode into the function's type, is treated as a miss and overwritten.
//!
//! **Schema.** Explicit versions (`version = N`) are below 2³¹; fingerprints (the default: a
//! hash of the return type as written, the crate's name and its version) have bit 31 set. Entries
//! of layout version 1 (written before schemas existed) carry none: they are read by functions
//! without an explicit `version` and without tags, as before, and are misses for the others.
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
const VERSION: u8 = 2;
const HEADER_LEN: usize = 28;
/// The layout before schemas and tags: 16 bytes, the same first 16 as now.
const VERSION_1: u8 = 1;
const HEADER_1_LEN: usize = 16;
/// Bit 31 of a schema: a fingerprint, not an explicit `version = N`.
pub(crate) const FINGERPRINT: u32 = 1 << 31;
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
    /// When the entry stops being fresh (Unix ms by the writer's clock).
    pub expires_ms: u64,
    pub codec: Codec,
    pub flags: u8,
    /// The value type's version or fingerprint; `None` in entries of layout version 1.
    pub schema: Option<u32>,
    /// The stamp of the entry's tag versions; 0 without tags.
    pub tags: u64,
}

impl Header {
    /// Whether the entry is still fresh at `now_ms`.
    pub(crate) fn fresh_at(&self, now_ms: u64) -> bool {
        now_ms < self.expires_ms
    }
}

/// What a new envelope records besides the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// How long the function took.
    pub delta: Duration,
    /// How long the entry stays fresh from now.
    pub fresh_for: Duration,
    pub schema: u32,
    pub tags: u64,
}

/// What a reader accepts: its schema and its tags' current stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expected {
    pub schema: u32,
    pub tags: u64,
}

/// `Expected::tags` of a reader that takes whatever tag stamp the entry has: a flight's
/// follower, handed the value its leader just checked or computed. Even, so never a stamp.
pub(crate) const ANY_TAGS: u64 = u64::MAX - 1;

/// `Expected::tags` of a tagged reader that found a tag without a version: no entry carrying it
/// is valid. Even, so never a stamp.
pub(crate) const UNKNOWN_TAGS: u64 = 2;

/// Why a stored value cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// Not an envelope this version understands (foreign data, a future layout).
    Foreign,
    /// Written for another version of the value type.
    OtherSchema,
    /// One of its tags was invalidated since it was computed.
    Invalidated,
    /// The payload does not decode into the type.
    Undecodable,
}

/// Serializes `value` behind a header, compressing the payload when it is larger than the
/// threshold and compression makes it smaller.
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    encoding: Encoding,
    stamp: Stamp,
) -> Result<Vec<u8>, EncodeError> {
    let mut buf = Vec::with_capacity(128);
    buf.extend_from_slice(&[MAGIC, VERSION, encoding.codec.byte(), 0]);
    let delta_ms = u32::try_from(stamp.delta.as_millis()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&delta_ms.to_le_bytes());
    let fresh_ms = crate::util::whole_millis(stamp.fresh_for);
    buf.extend_from_slice(&now_ms().saturating_add(fresh_ms).to_le_bytes());
    buf.extend_from_slice(&stamp.schema.to_le_bytes());
    buf.extend_from_slice(&stamp.tags.to_le_bytes());
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
    let header_len = match stored.get(..2)? {
        [MAGIC, VERSION] => HEADER_LEN,
        [MAGIC, VERSION_1] => HEADER_1_LEN,
        _ => return None,
    };
    if stored.len() < header_len {
        return None;
    }
    let codec = Codec::from_byte(stored[2])?;
    let flags = stored[3];
    if flags & !LZ4 != 0 {
        return None;
    }
    let delta_ms = u32::from_le_bytes(stored[4..8].try_into().ok()?);
    let expires_ms = u64::from_le_bytes(stored[8..16].try_into().ok()?);
    let (schema, tags) = if header_len == HEADER_LEN {
        (
            Some(u32::from_le_bytes(stored[16..20].try_into().ok()?)),
            u64::from_le_bytes(stored[20..28].try_into().ok()?),
        )
    } else {
        (None, 0)
    };
    Some((
        Header {
            delta_ms,
            expires_ms,
            codec,
            flags,
            schema,
            tags,
        },
        &stored[header_len..],
    ))
}

/// Whether an entry with `header` may be read by a reader expecting `expected`: the same
/// schema and tag stamp; an entry of layout 1 (no schema, no tags) only by a reader whose schema
/// is a fingerprint and that has no tags.
pub(crate) fn check(header: &Header, expected: Expected) -> Result<(), Unusable> {
    match header.schema {
        Some(schema) if schema != expected.schema => return Err(Unusable::OtherSchema),
        None if expected.schema & FINGERPRINT == 0 || expected.tags != 0 => {
            return Err(Unusable::OtherSchema);
        }
        _ => {}
    }
    if header.tags != expected.tags && expected.tags != ANY_TAGS {
        return Err(Unusable::Invalidated);
    }
    Ok(())
}

/// The value of a stored envelope, if `expected` may read it, decompressed if need be and
/// decoded with the codec its header names. The header is checked before the payload is
/// decoded, so that an entry of another schema costs no decoding.
pub(crate) fn decode_value<T: DeserializeOwned>(
    stored: &[u8],
    expected: Expected,
) -> Result<(T, Header), Unusable> {
    let (header, payload) = decode(stored).ok_or(Unusable::Foreign)?;
    check(&header, expected)?;
    let payload = if header.flags & LZ4 != 0 {
        Cow::Owned(decompress(payload).ok_or(Unusable::Undecodable)?)
    } else {
        Cow::Borrowed(payload)
    };
    let value = header.codec.read(&payload).ok_or(Unusable::Undecodable)?;
    Ok((value, header))
}

/// When the entry `stored` stops being fresh, if it is an envelope.
pub(crate) fn expires_ms(stored: &[u8]) -> Option<u64> {
    decode(stored).map(|(header, _)| header.expires_ms)
}

/// The schema of a value type: an explicit `version` (below 2³¹) as is, or else the
/// fingerprint of the type as written in the signature and the crate's name and version, with
/// bit 31 set (FNV-1a, at compile time).
#[doc(hidden)]
pub const fn schema(
    version: Option<u32>,
    type_name: &str,
    krate: &str,
    krate_version: &str,
) -> u32 {
    if let Some(version) = version {
        return version & !FINGERPRINT;
    }
    let mut hash: u32 = 0x811c_9dc5;
    let parts = [
        type_name.as_bytes(),
        krate.as_bytes(),
        krate_version.as_bytes(),
    ];
    let mut p = 0;
    while p < parts.len() {
        let bytes = parts[p];
        let mut i = 0;
        while i < bytes.len() {
            hash ^= bytes[i] as u32;
            hash = hash.wrapping_mul(0x0100_0193);
            i += 1;
        }
        // A separator, so that ("ab", "c") and ("a", "bc") differ.
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0100_0193);
        p += 1;
    }
    hash | FINGERPRINT
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
mod tests;
