//! The envelope's layout, codecs, compression and version checks.

use super::*;

/// What the tests write: no tags, the schema of `EXPECTED`.
fn stamp(delta: Duration, fresh_for: Duration) -> Stamp {
    Stamp {
        delta,
        fresh_for,
        schema: EXPECTED.schema,
        tags: 0,
    }
}

const EXPECTED: Expected = Expected {
    schema: schema(None, "T", "crate", "1.0.0"),
    tags: 0,
};

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
        stamp(Duration::from_millis(42), Duration::from_secs(10)),
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
        let bytes = encode(&v1, encoding, stamp(Duration::ZERO, Duration::from_secs(1))).unwrap();
        assert_eq!(decode(&bytes).unwrap().0.codec, codec);
        let (back, _) = decode_value::<V1>(&bytes, EXPECTED).unwrap();
        assert_eq!(back, v1);
        // Named fields: a field added with a default still reads old entries.
        if codec != Codec::Postcard {
            let (v2, _) = decode_value::<V2>(&bytes, EXPECTED).unwrap();
            assert_eq!((v2.id, v2.name.as_str(), v2.tags.len()), (7, "lamp", 0));
        }
        // A payload of another type is a miss, not a wrong value.
        assert!(decode_value::<Vec<u64>>(&bytes, EXPECTED).is_err());
    }
    let size = |codec| {
        let encoding = Encoding {
            codec,
            compress_above: None,
        };
        encode(&v1, encoding, stamp(Duration::ZERO, Duration::from_secs(1)))
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
    let plain = encode(&value, JSON, stamp(Duration::ZERO, Duration::from_secs(1))).unwrap();
    let compressing = Encoding {
        codec: Codec::Json,
        compress_above: Some(256),
    };
    let small = encode(
        &value,
        compressing,
        stamp(Duration::ZERO, Duration::from_secs(1)),
    )
    .unwrap();
    assert!(
        small.len() * 3 < plain.len(),
        "{} vs {}",
        small.len(),
        plain.len()
    );
    assert_eq!(small[3], LZ4);
    assert_eq!(
        decode_value::<Vec<String>>(&small, EXPECTED).unwrap().0,
        value
    );
    // Below the threshold: stored as is.
    let tiny = encode(
        &1u8,
        compressing,
        stamp(Duration::ZERO, Duration::from_secs(1)),
    )
    .unwrap();
    assert_eq!(tiny[3], 0);
}

#[test]
fn a_compressed_payload_cannot_claim_more_than_lz4_can_produce() {
    let value = vec![0u8; 4096];
    let compressing = Encoding {
        codec: Codec::Postcard,
        compress_above: Some(64),
    };
    let encoded = || {
        encode(
            &value,
            compressing,
            stamp(Duration::ZERO, Duration::from_secs(1)),
        )
        .unwrap()
    };
    assert_eq!(
        decode_value::<Vec<u8>>(&encoded(), EXPECTED).unwrap().0,
        value
    );
    // Claims 4 GiB of output.
    let mut bytes = encoded();
    bytes[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(decode_value::<Vec<u8>>(&bytes, EXPECTED).is_err());
    // A truncated block.
    let mut cut = encoded();
    cut.truncate(cut.len() - 3);
    assert!(decode_value::<Vec<u8>>(&cut, EXPECTED).is_err());
    // Unknown flags.
    let mut flagged = encode(&1, JSON, stamp(Duration::ZERO, Duration::from_secs(1))).unwrap();
    flagged[3] = 0x80;
    assert!(decode(&flagged).is_none());
}

#[test]
fn an_unknown_codec_byte_is_not_an_envelope() {
    let mut bytes = encode(&1, JSON, stamp(Duration::ZERO, Duration::from_secs(1))).unwrap();
    bytes[2] = 200;
    assert!(decode(&bytes).is_none());
}

#[test]
fn foreign_values_are_rejected() {
    assert!(decode(b"").is_none());
    assert!(decode(b"{\"plain\":\"json value\"}").is_none());
    let mut bytes = encode(&1, JSON, stamp(Duration::ZERO, Duration::from_secs(1))).unwrap();
    bytes[1] = 99;
    assert!(decode(&bytes).is_none());
}

#[test]
fn an_entry_of_another_schema_or_tag_stamp_is_unusable_before_its_payload_is_decoded() {
    let bytes = encode(&7u32, JSON, stamp(Duration::ZERO, Duration::from_secs(1))).unwrap();
    let (header, _) = decode(&bytes).unwrap();
    assert_eq!((header.schema, header.tags), (Some(EXPECTED.schema), 0));
    let other_schema = Expected {
        schema: schema(None, "T", "crate", "1.0.1"),
        ..EXPECTED
    };
    assert_ne!(other_schema.schema, EXPECTED.schema);
    assert_eq!(
        decode_value::<u32>(&bytes, other_schema).unwrap_err(),
        Unusable::OtherSchema
    );
    let retagged = Expected {
        tags: 42,
        ..EXPECTED
    };
    assert_eq!(
        decode_value::<u32>(&bytes, retagged).unwrap_err(),
        Unusable::Invalidated
    );
    // A payload of another type, same schema: undecodable.
    assert_eq!(
        decode_value::<String>(&bytes, EXPECTED).unwrap_err(),
        Unusable::Undecodable
    );
    assert_eq!(
        decode_value::<u32>(b"plain", EXPECTED).unwrap_err(),
        Unusable::Foreign
    );
}

#[test]
fn explicit_versions_and_fingerprints_never_collide() {
    assert_eq!(schema(Some(3), "T", "c", "1"), 3);
    assert_eq!(schema(Some(u32::MAX), "T", "c", "1") & FINGERPRINT, 0);
    let fingerprint = schema(None, "Product", "shop", "1.2.0");
    assert_ne!(fingerprint & FINGERPRINT, 0);
    assert_ne!(fingerprint, schema(None, "Product", "shop", "1.3.0"));
    assert_ne!(
        fingerprint,
        schema(None, "Result<Product, E>", "shop", "1.2.0")
    );
    assert_ne!(schema(None, "ab", "c", "1"), schema(None, "a", "bc", "1"));
}

/// An entry as the previous layout wrote it: 16 bytes of header, no schema, no tags.
fn layout_1(payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![MAGIC, VERSION_1, Codec::Json.byte(), 0];
    bytes.extend_from_slice(&5u32.to_le_bytes());
    bytes.extend_from_slice(&(now_ms() + 60_000).to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

#[test]
fn entries_of_layout_1_are_read_by_fingerprinted_readers_without_tags_only() {
    let old = layout_1(b"[1,2]");
    let (value, header) = decode_value::<Vec<u8>>(&old, EXPECTED).unwrap();
    assert_eq!(
        (value, header.schema, header.delta_ms),
        (vec![1, 2], None, 5)
    );
    let versioned = Expected { schema: 1, tags: 0 };
    assert_eq!(
        decode_value::<Vec<u8>>(&old, versioned).unwrap_err(),
        Unusable::OtherSchema
    );
    let tagged = Expected {
        tags: 9,
        ..EXPECTED
    };
    assert!(decode_value::<Vec<u8>>(&old, tagged).is_err());
    // Too short for its own layout.
    assert!(decode(&old[..12]).is_none());
    let mut v2_short = encode(&1, JSON, stamp(Duration::ZERO, Duration::from_secs(1))).unwrap();
    v2_short.truncate(20);
    assert!(decode(&v2_short).is_none());
}

#[test]
fn freshness_is_the_header_s_expiry() {
    let bytes = encode(&1, JSON, stamp(Duration::ZERO, Duration::from_secs(10))).unwrap();
    let (header, _) = decode(&bytes).unwrap();
    let now = now_ms();
    assert!(header.fresh_at(now));
    assert!(!header.fresh_at(now + 10_001));
    assert_eq!(expires_ms(&bytes), Some(header.expires_ms));
    assert_eq!(expires_ms(b"x"), None);
}
