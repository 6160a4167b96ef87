//! Event streams on a real redis-server and on `mem://` (and with the root features on the
//! cluster and behind Sentinel): appends with growing ids, the length cap, and the stored
//! format other tools read.

mod common;

use common::Kind;
use redis_patterns::stream::{EventId, EventStream};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Order {
    id: u64,
    cents: u64,
}

async fn appends_get_growing_ids_and_the_cap_holds(kind: Kind) {
    let client = common::client(kind, "stream-append");
    let orders = EventStream::<Order>::new("orders")
        .max_len(50)
        .client(client.clone());
    assert_eq!(orders.len().await.unwrap(), 0);
    let mut last = EventId::default();
    for id in 0..500 {
        let appended = orders.append(&Order { id, cents: 100 }).await.unwrap();
        assert!(appended > last, "{appended} after {last}");
        last = appended;
    }
    let len = orders.len().await.unwrap();
    // `MAXLEN ~` trims whole nodes of 100 events.
    assert!((50..=150).contains(&len), "{len} events kept");
    // Another stream of the same client is another key.
    let other = EventStream::<Order>::new("refunds").client(client);
    assert_eq!(other.len().await.unwrap(), 0);
}

on_both_backends!(appends_get_growing_ids_and_the_cap_holds);

/// Events are stored as other tools expect: one field `d` with the JSON, under the stream's
/// hash tag, with no TTL (a log bounded by its cap).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_its_json_in_field_d_of_a_key_under_the_streams_hash_tag() {
    let client = common::client(Kind::Redis, "stream-format");
    let orders = EventStream::<Order>::new("orders").client(client.clone());
    let id = orders
        .append(&Order {
            id: 7,
            cents: 4_999,
        })
        .await
        .unwrap();
    let key = format!("{}:{{orders}}:stream", client.namespace().unwrap());
    let mut conn = common::server().redis();
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(&key)
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, id.to_string());
    assert_eq!(
        entries[0].1,
        [("d".to_owned(), r#"{"id":7,"cents":4999}"#.to_owned())]
    );
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
    assert_eq!(ttl, -1, "a stream has no TTL: its cap bounds it");
}
