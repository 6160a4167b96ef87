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
    assert_eq!(client.cache_stats().hits, 2);
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
);
