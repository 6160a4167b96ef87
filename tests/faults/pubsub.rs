//! Pub/sub under faults: a subscription outlives its connection. A killed connection, a
//! restarted server and a silent network are each noticed, the subscription is renewed and
//! says so (`Notice::Resubscribed`), and later messages are received. Publishing and
//! subscribing fail with typed errors within the timeouts meanwhile.

use std::time::Duration;

use futures::StreamExt;
use redis_patterns::Client;
use redis_patterns::pubsub::{Notice, Subscription, Topic};
use tokio::time::Instant;

use crate::bounded;
use crate::common::{self, RedisServer, proxy::FaultProxy};

const CONNECT: Duration = Duration::from_millis(400);
const COMMAND: Duration = Duration::from_millis(250);

fn client_of(url: &str, ns: &str) -> Client {
    crate::client_with(url, ns, CONNECT, COMMAND)
}

/// How long a lost connection may take to be noticed and renewed once the server answers
/// again: a heartbeat and its timeout, the longest backoff, dialling and subscribing.
const RENEWED_WITHIN: Duration = Duration::from_secs(5);

/// Waits for the `Resubscribed` notice, then publishes until a message gets through.
async fn renewed_and_receiving(topic: &Topic<u64>, s: &mut Subscription<u64>) {
    let notice = bounded(RENEWED_WITHIN, s.next())
        .await
        .expect("stream ended");
    assert!(
        matches!(notice, Err(Notice::Resubscribed)),
        "expected the renewal, got {notice:?}"
    );
    // Renewed before the notice was sent: the next message is received.
    topic.publish(&42).await.unwrap();
    let got = bounded(RENEWED_WITHIN, s.next())
        .await
        .expect("stream ended");
    assert_eq!(got.unwrap(), 42);
    assert_eq!(topic.stats().resubscribed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_subscription_connection_is_renewed_and_says_so() {
    let server = RedisServer::start();
    let client = client_of(&server.url(), &common::namespace("pubsub-kill"));
    let topic = Topic::<u64>::new("events").client(client.clone());
    let mut s = topic.subscribe().await.unwrap();
    // Several sharded topics: renewed together, one `SSUBSCRIBE` each.
    let sharded: Vec<Topic<u64>> = (0..3)
        .map(|i| {
            Topic::<u64>::new(format!("prices-{i}"))
                .sharded()
                .client(client.clone())
        })
        .collect();
    let mut by_shard = Vec::new();
    for topic in &sharded {
        by_shard.push(topic.subscribe().await.unwrap());
    }
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut server.redis())
        .unwrap();
    assert_eq!(
        killed, 1,
        "the subscriptions' own connection (sharded ones too)"
    );
    renewed_and_receiving(&topic, &mut s).await;
    for (topic, s) in sharded.iter().zip(&mut by_shard) {
        renewed_and_receiving(topic, s).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_survive_a_server_restart() {
    let server = RedisServer::start();
    let client = client_of(&server.url(), &common::namespace("pubsub-restart"));
    let topic = Topic::<u64>::new("events").client(client.clone());
    let mut s = topic.subscribe().await.unwrap();
    server.stop();
    // The publish's failure (a dial and a command at most), then the subscription's timeout
    // (`subscribe_timeout`: 5 dials and 2 commands), and scheduling slack.
    let bound = (CONNECT + COMMAND) + (5 * CONNECT + 2 * COMMAND) + Duration::from_millis(500);
    let started = Instant::now();
    assert!(
        bounded(Duration::from_secs(5), topic.publish(&1))
            .await
            .is_err()
    );
    // A channel not subscribed yet cannot be confirmed. (One already subscribed is joined at
    // once while the loss is not noticed yet: it hears of the renewal with the others.)
    let other = Topic::<u64>::new("other").client(client.clone());
    let refused = bounded(Duration::from_secs(10), other.subscribe()).await;
    assert!(
        matches!(refused, Err(redis_patterns::Error::Timeout(_))),
        "a subscription cannot be confirmed while the server is down: {refused:?}"
    );
    assert!(started.elapsed() <= bound, "waited {:?}", started.elapsed());
    assert_eq!(topic.stats().backend_errors, 1);
    assert_eq!(other.stats().backend_errors, 1);
    server.restart();
    renewed_and_receiving(&topic, &mut s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_network_is_noticed_by_the_heartbeat() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let client = client_of(&proxy.url(), &common::namespace("pubsub-silent"));
    let topic = Topic::<u64>::new("events").client(client.clone());
    let mut s = topic.subscribe().await.unwrap();
    // The subscription's connection goes silent (no error, no close); new ones pass. Only
    // the unanswered heartbeat tells: the connection is replaced.
    proxy.blackhole();
    renewed_and_receiving(&topic, &mut s).await;
}

/// A server without sharded pub/sub (before Redis 7.0; here, `SSUBSCRIBE` renamed away)
/// refuses a sharded subscription: a typed error at once that says what is needed, and the
/// client's other subscriptions go on undisturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_sharded_pubsub_refuses_sharded_topics_with_a_typed_error() {
    let server = RedisServer::start_with(&["--rename-command", "SSUBSCRIBE", "ssubscribe-off"]);
    let client = client_of(&server.url(), &common::namespace("pubsub-no-shards"));
    let topic = Topic::<u64>::new("events").client(client.clone());
    let mut s = topic.subscribe().await.unwrap();
    let sharded = Topic::<u64>::new("prices").sharded().client(client.clone());
    let started = Instant::now();
    match sharded.subscribe().await {
        Err(redis_patterns::Error::Config(message)) => {
            assert!(message.contains("unknown command"), "{message}");
            assert!(
                message.contains("Redis 7.0"),
                "says what is needed: {message}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(started.elapsed() < CONNECT, "refused, not timed out");
    topic.publish(&3).await.unwrap();
    let got = bounded(RENEWED_WITHIN, s.next())
        .await
        .expect("stream ended");
    assert_eq!(got.unwrap(), 3, "the plain subscription was not disturbed");
    assert_eq!(topic.stats().resubscribed, 0);
}
