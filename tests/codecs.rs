//! Codecs (`codec = "…"`, `Config::codec`): what each writes, and that reading follows the
//! codec byte of the stored entry, so a deploy that switches codecs reads the entries already
//! stored instead of recomputing them.

mod common;

use common::{Calls, Kind};
use redis_patterns::cache::Codec;
use redis_patterns::test_util::Store;
use redis_patterns::{Client, cache_put, cached};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    id: u64,
    name: String,
    tags: Vec<String>,
}

fn item(id: u64) -> Item {
    Item {
        id,
        name: format!("item {id}"),
        tags: vec!["a".into(), "b".into()],
    }
}

// Three functions on one key template: one entry, written and read by each.
#[cached(key = "item:<id>", ttl = "1m", codec = "msgpack", client = client, skip(calls))]
async fn item_msgpack(client: &Client, calls: &Calls, id: u64) -> Item {
    calls.hit();
    item(id)
}

#[cached(key = "item:<id>", ttl = "1m", codec = "json", client = client, skip(calls))]
async fn item_json(client: &Client, calls: &Calls, id: u64) -> Item {
    calls.hit();
    item(id)
}

#[cached(key = "item:<id>", ttl = "1m", client = client, skip(calls))]
async fn item_default(client: &Client, calls: &Calls, id: u64) -> Item {
    calls.hit();
    item(id)
}

#[cached(key = "item:<id>", ttl = "1m", codec = "postcard", client = client, skip(calls))]
async fn item_postcard(client: &Client, calls: &Calls, id: u64) -> Item {
    calls.hit();
    item(id)
}

/// A large, repetitive value: what compression is for.
#[cached(key = "item:<id>", ttl = "1m", client = client, skip(calls))]
async fn document(client: &Client, calls: &Calls, id: u64) -> String {
    calls.hit();
    format!("chapter {id}: ").repeat(100)
}

#[cache_put(key = "item:<id>", ttl = "1m", codec = "msgpack", client = client)]
async fn save_item(client: &Client, id: u64) -> Result<Item, String> {
    Ok(item(id))
}

/// The codec byte of the entry of `item:<id>` (byte 2 of the envelope).
async fn stored_codec(client: &Client, id: u64) -> u8 {
    let key = format!("{}:{{item:#{id}}}", client.namespace().unwrap());
    let stored = Store::of(client)
        .get(&key)
        .await
        .unwrap()
        .expect("an entry");
    stored[2]
}

const JSON: u8 = 1;
const MESSAGE_PACK: u8 = 2;
const POSTCARD: u8 = 3;

/// The flags byte of the entry of `item:<id>` (byte 3: bit 0 = LZ4).
async fn stored_flags(client: &Client, id: u64) -> u8 {
    let key = format!("{}:{{item:#{id}}}", client.namespace().unwrap());
    Store::of(client)
        .get(&key)
        .await
        .unwrap()
        .expect("an entry")[3]
}

async fn switching_codecs_reads_the_entries_already_stored(kind: Kind) {
    let client = common::client(kind, "codec-switch");
    let calls = Calls::default();
    assert_eq!(item_msgpack(&client, &calls, 1).await, item(1));
    assert_eq!(stored_codec(&client, 1).await, MESSAGE_PACK);
    // A deploy that writes JSON reads the MessagePack entry: a hit.
    assert_eq!(item_json(&client, &calls, 1).await, item(1));
    assert_eq!(calls.get(), 1);
    item_json_invalidate(&client, 1).await.unwrap();
    assert_eq!(item_json(&client, &calls, 1).await, item(1));
    assert_eq!(stored_codec(&client, 1).await, JSON);
    // And back.
    assert_eq!(item_msgpack(&client, &calls, 1).await, item(1));
    assert_eq!(calls.get(), 2);
    // Postcard reads what the others wrote, and they read what it writes.
    assert_eq!(item_postcard(&client, &calls, 1).await, item(1));
    item_postcard_invalidate(&client, 1).await.unwrap();
    assert_eq!(item_postcard(&client, &calls, 1).await, item(1));
    assert_eq!(stored_codec(&client, 1).await, POSTCARD);
    assert_eq!(item_json(&client, &calls, 1).await, item(1));
    assert_eq!(calls.get(), 3);
    assert_eq!(client.cache_stats().hits, 4);
}

async fn large_values_are_compressed_and_read_by_every_client(kind: Kind) {
    let ns = common::namespace("codec-lz4");
    let compressing = Client::new(common::config(kind, &ns).compress_above(16)).unwrap();
    let plain = Client::new(common::config(kind, &ns)).unwrap();
    let calls = Calls::default();
    let text = |id: u64| format!("chapter {id}: ").repeat(100);
    assert_eq!(document(&compressing, &calls, 3).await, text(3));
    assert_eq!(stored_flags(&compressing, 3).await, 1, "compressed");
    // A client that does not compress reads it.
    assert_eq!(document(&plain, &calls, 3).await, text(3));
    assert_eq!(calls.get(), 1);
    // Below the threshold nothing is compressed.
    let above_all = Client::new(common::config(kind, &ns).compress_above(1 << 20)).unwrap();
    assert_eq!(document(&above_all, &calls, 4).await, text(4));
    assert_eq!(stored_flags(&above_all, 4).await, 0);
}

async fn the_client_default_applies_unless_the_function_sets_one(kind: Kind) {
    let ns = common::namespace("codec-default");
    let client = Client::new(common::config(kind, &ns).codec(Codec::MessagePack)).unwrap();
    let calls = Calls::default();
    assert_eq!(item_default(&client, &calls, 5).await, item(5));
    assert_eq!(stored_codec(&client, 5).await, MESSAGE_PACK);
    assert_eq!(item_json(&client, &calls, 6).await, item(6));
    assert_eq!(stored_codec(&client, 6).await, JSON);
    // A client without a codec writes JSON.
    let plain = common::client(kind, "codec-plain");
    assert_eq!(item_default(&plain, &calls, 7).await, item(7));
    assert_eq!(stored_codec(&plain, 7).await, JSON);
}

async fn cache_put_writes_its_codec_and_cached_reads_it(kind: Kind) {
    let client = common::client(kind, "codec-put");
    let calls = Calls::default();
    save_item(&client, 9).await.unwrap();
    assert_eq!(stored_codec(&client, 9).await, MESSAGE_PACK);
    assert_eq!(item_json(&client, &calls, 9).await, item(9));
    assert_eq!(calls.get(), 0, "the written entry was read");
}

on_both_backends!(
    switching_codecs_reads_the_entries_already_stored,
    the_client_default_applies_unless_the_function_sets_one,
    cache_put_writes_its_codec_and_cached_reads_it,
    large_values_are_compressed_and_read_by_every_client,
);
