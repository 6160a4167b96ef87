//! Pub/sub and stream appends against the hand-written redis-rs code of the same guarantee, in
//! one run against one server, both sides interleaved in every sample:
//!
//! | ours | hand-written |
//! |---|---|
//! | `Topic::publish` of a small struct | `serde_json::to_vec`, then `PUBLISH` on a multiplexed connection |
//! | the same on a [sharded](Topic::sharded) topic | `serde_json::to_vec`, then `SPUBLISH` |
//! | `EventStream::append` of the same | `serde_json::to_vec`, then `XADD key MAXLEN ~ 100000 * d json` |
//!
//! ```text
//! cargo bench --bench pubsub          # or RUNS=3 scripts/bench-report pubsub
//! ```
//!
//! `<op>_latency`: one caller on a current-thread runtime; `<op>_throughput_64`: 64
//! tasks on the default multi-threaded runtime, each on a channel (stream) of its own. The channels
//! have no subscribers: the measure is the publish, not the fan-out, which costs the server
//! the same whoever published.

mod support;

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use redis::aio::MultiplexedConnection;
use redis_patterns::pubsub::Topic;
use redis_patterns::stream::EventStream;
use redis_patterns::{Client, Config};
use serde::Serialize;
use support::{compare, server};
use tokio::runtime::Runtime;

#[derive(Serialize)]
struct PriceChanged {
    sku: u64,
    cents: u64,
    currency: &'static str,
}

const EVENT: PriceChanged = PriceChanged {
    sku: 42,
    cents: 4_999,
    currency: "EUR",
};

#[derive(Clone)]
struct Sides {
    conn: MultiplexedConnection,
    topics: Arc<Vec<Topic<PriceChanged>>>,
    sharded: Arc<Vec<Topic<PriceChanged>>>,
    streams: Arc<Vec<EventStream<PriceChanged>>>,
}

fn sides(rt: &Runtime) -> Sides {
    rt.block_on(async {
        let url = server().url();
        let conn = redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let client = Client::new(Config::from_url(&url).unwrap().namespace("bench")).unwrap();
        client.connect().await.unwrap();
        let topics = Arc::new(
            (0..support::CONCURRENCY)
                .map(|task| Topic::new(format!("prices:{task}")).client(client.clone()))
                .collect(),
        );
        let sharded = Arc::new(
            (0..support::CONCURRENCY)
                .map(|task| {
                    Topic::new(format!("prices:{task}"))
                        .sharded()
                        .client(client.clone())
                })
                .collect(),
        );
        let streams = Arc::new(
            (0..support::CONCURRENCY)
                .map(|task| EventStream::new(format!("prices:{task}")).client(client.clone()))
                .collect(),
        );
        Sides {
            conn,
            topics,
            sharded,
            streams,
        }
    })
}

fn publish(c: &mut Criterion) {
    publish_against(c, "publish", "PUBLISH", |s| &s.topics);
}

fn publish_sharded(c: &mut Criterion) {
    publish_against(c, "publish_sharded", "SPUBLISH", |s| &s.sharded);
}

/// `Topic::publish` of the topics `topics` picks against `command` by hand.
fn publish_against(
    c: &mut Criterion,
    group: &str,
    command: &'static str,
    topics: fn(&Sides) -> &Arc<Vec<Topic<PriceChanged>>>,
) {
    compare(
        c,
        sides,
        group,
        move |mut s: Sides, task| async move {
            let payload = serde_json::to_vec(&EVENT).unwrap();
            let receivers: u64 = redis::cmd(command)
                .arg(format!("base:prices:{task}"))
                .arg(payload)
                .query_async(&mut s.conn)
                .await
                .unwrap();
            std::hint::black_box(receivers);
        },
        move |s: Sides, task| async move {
            let topics = topics(&s);
            let topic = &topics[task as usize % topics.len()];
            std::hint::black_box(topic.publish(&EVENT).await.unwrap());
        },
    );
}

fn append(c: &mut Criterion) {
    compare(
        c,
        sides,
        "append",
        |mut s: Sides, task| async move {
            let payload = serde_json::to_vec(&EVENT).unwrap();
            let id: String = redis::cmd("XADD")
                .arg(format!("base:{{prices:{task}}}:stream"))
                .arg("MAXLEN")
                .arg("~")
                .arg(100_000)
                .arg("*")
                .arg("d")
                .arg(payload)
                .query_async(&mut s.conn)
                .await
                .unwrap();
            std::hint::black_box(id);
        },
        |s: Sides, task| async move {
            let stream = &s.streams[task as usize % s.streams.len()];
            std::hint::black_box(stream.append(&EVENT).await.unwrap());
        },
    );
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = publish, publish_sharded, append
}
criterion_main!(benches);
