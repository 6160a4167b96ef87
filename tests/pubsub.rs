//! Typed pub/sub on a real redis-server and on `mem://` (and with the root features on the
//! cluster and behind Sentinel): fan-out to every subscription of every client, patterns
//! within the namespace, bad messages, slow subscribers, and unsubscribing by dropping.
//! Lost connections and restarts are in `tests/faults/pubsub.rs`.

mod common;

use std::time::Duration;

use common::Kind;
use futures::StreamExt;
use redis_patterns::pubsub::{Message, Notice, Pattern, Subscription, Topic};

/// The next item, or a failure after 5 s.
async fn next<T: std::fmt::Debug>(s: &mut Subscription<T>) -> Result<T, Notice> {
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("no message within 5 s")
        .expect("the subscription ended")
}

/// Whether the subscription yields nothing for 200 ms.
async fn quiet<T: std::fmt::Debug>(s: &mut Subscription<T>) -> bool {
    tokio::time::timeout(Duration::from_millis(200), s.next())
        .await
        .is_err()
}

/// How many subscriptions a publish reaches is what Redis counts on one server; a cluster
/// counts those of the node that took the `PUBLISH` only.
fn counts_receivers(kind: Kind) -> bool {
    #[cfg(feature = "cluster")]
    if matches!(kind, Kind::Cluster) {
        return false;
    }
    let _ = kind;
    true
}

async fn every_subscription_of_every_client_receives_each_message(kind: Kind) {
    let ns = common::namespace("pubsub-fanout");
    let clients = common::clients(kind, &ns, 2);
    let topic = |i: usize| Topic::<String>::new("news").client(clients[i].clone());
    let mut a = topic(0).subscribe().await.unwrap();
    let mut b = topic(1).subscribe().await.unwrap();
    let mut b2 = topic(1).subscribe().await.unwrap();
    let sent = topic(0).publish(&"hello".to_owned()).await.unwrap();
    if counts_receivers(kind) {
        // One per client connection subscribed to the channel, as Redis counts them.
        assert_eq!(sent, 2);
    }
    for s in [&mut a, &mut b, &mut b2] {
        assert_eq!(next(s).await.unwrap(), "hello");
    }
    // Other topics, and the same topic under another namespace, are not received.
    Topic::<String>::new("sport")
        .client(clients[0].clone())
        .publish(&"goal".to_owned())
        .await
        .unwrap();
    let other = common::client(kind, "pubsub-other-ns");
    Topic::<String>::new("news")
        .client(other)
        .publish(&"elsewhere".to_owned())
        .await
        .unwrap();
    assert!(quiet(&mut a).await);
    assert!(quiet(&mut b).await && quiet(&mut b2).await);
}

async fn patterns_match_topics_within_the_namespace(kind: Kind) {
    let client = common::client(kind, "pubsub-pattern");
    let pattern = Pattern::<u64>::new("orders:*").client(client.clone());
    let mut orders = pattern.subscribe().await.unwrap();
    let topic = |name: &str| Topic::<u64>::new(name).client(client.clone());
    topic("orders:paid").publish(&1).await.unwrap();
    topic("users:new").publish(&2).await.unwrap();
    topic("orders:open").publish(&3).await.unwrap();
    let got = next(&mut orders).await.unwrap();
    assert_eq!((got.topic.as_str(), got.value), ("orders:paid", 1));
    let got: Message<u64> = next(&mut orders).await.unwrap();
    assert_eq!((got.topic.as_str(), got.value), ("orders:open", 3));
    assert!(quiet(&mut orders).await);
    assert_eq!(pattern.stats().received, 2);
}

async fn a_message_of_another_type_is_a_notice_and_the_stream_goes_on(kind: Kind) {
    let client = common::client(kind, "pubsub-types");
    let prices = Topic::<u64>::new("prices").client(client.clone());
    let mut s = prices.subscribe().await.unwrap();
    Topic::<String>::new("prices")
        .client(client.clone())
        .publish(&"cheap".to_owned())
        .await
        .unwrap();
    prices.publish(&4_999).await.unwrap();
    match next(&mut s).await {
        Err(Notice::Undecodable { topic, .. }) => assert_eq!(topic, "prices"),
        other => panic!("expected a notice, got {other:?}"),
    }
    assert_eq!(next(&mut s).await.unwrap(), 4_999);
    let stats = prices.stats();
    assert_eq!(
        (stats.published, stats.received, stats.undecodable),
        (1, 1, 1)
    );
}

async fn a_slow_subscriber_loses_its_oldest_messages_and_hears_how_many(kind: Kind) {
    let client = common::client(kind, "pubsub-slow");
    let ticks = Topic::<u64>::new("ticks").client(client.clone()).buffer(2);
    let mut slow = ticks.subscribe().await.unwrap();
    let mut fast = ticks.clone().buffer(100).subscribe().await.unwrap();
    for i in 0..5 {
        ticks.publish(&i).await.unwrap();
    }
    // The fast one has all five; wait for them so that the slow one's buffer has overflowed.
    for i in 0..5 {
        assert_eq!(next(&mut fast).await.unwrap(), i);
    }
    match next(&mut slow).await {
        Err(Notice::Lagged { missed }) => assert_eq!(missed, 3),
        other => panic!("expected the lag, got {other:?}"),
    }
    assert_eq!(next(&mut slow).await.unwrap(), 3);
    assert_eq!(next(&mut slow).await.unwrap(), 4);
    assert_eq!(ticks.stats().lagged, 1);
}

async fn dropping_the_last_subscription_unsubscribes(kind: Kind) {
    let client = common::client(kind, "pubsub-drop");
    let topic = Topic::<u64>::new("alerts").client(client.clone());
    let first = topic.subscribe().await.unwrap();
    let mut second = topic.subscribe().await.unwrap();
    drop(first);
    topic.publish(&1).await.unwrap();
    assert_eq!(next(&mut second).await.unwrap(), 1, "the other one stays");
    drop(second);
    if !counts_receivers(kind) {
        return;
    }
    // The connection unsubscribes in the background: soon nobody receives.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while topic.publish(&2).await.unwrap() != 0 {
        assert!(tokio::time::Instant::now() < deadline, "still subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A sharded topic (`SPUBLISH`/`SSUBSCRIBE`) reaches its sharded subscriptions on every
/// client, and only them: not a plain subscription of the same name, nor a pattern; and a
/// plain publish does not reach it. The count is exact on a cluster too: every subscription
/// of a sharded channel is on the shard owning its slot.
async fn a_sharded_topic_reaches_its_sharded_subscriptions_only(kind: Kind) {
    let ns = common::namespace("pubsub-sharded");
    let clients = common::clients(kind, &ns, 2);
    let sharded = |i: usize| {
        Topic::<String>::new("prices")
            .sharded()
            .client(clients[i].clone())
    };
    let plain = Topic::<String>::new("prices").client(clients[0].clone());
    assert!(sharded(0).is_sharded() && !plain.is_sharded());
    let mut a = sharded(0).subscribe().await.unwrap();
    let mut b = sharded(1).subscribe().await.unwrap();
    let mut p = plain.subscribe().await.unwrap();
    let mut all = Pattern::<String>::new("*")
        .client(clients[1].clone())
        .subscribe()
        .await
        .unwrap();
    assert_eq!(sharded(1).publish(&"s".to_owned()).await.unwrap(), 2);
    assert_eq!(next(&mut a).await.unwrap(), "s");
    assert_eq!(next(&mut b).await.unwrap(), "s");
    assert!(quiet(&mut p).await && quiet(&mut all).await);
    let sent = plain.publish(&"p".to_owned()).await.unwrap();
    if counts_receivers(kind) {
        assert_eq!(sent, 2, "the plain subscription and the pattern");
    }
    assert_eq!(next(&mut p).await.unwrap(), "p");
    assert_eq!(next(&mut all).await.unwrap().value, "p");
    assert!(quiet(&mut a).await && quiet(&mut b).await);
}

/// Sharded topics spread over many slots (on a cluster, over every shard): each subscription
/// receives its own topic's messages; dropping them unsubscribes each where it is.
async fn sharded_topics_of_many_slots_are_each_received_and_unsubscribed(kind: Kind) {
    let ns = common::namespace("pubsub-shards");
    let clients = common::clients(kind, &ns, 2);
    let topic = |i: usize, n: u64| {
        Topic::<u64>::new(format!("shard-{n}"))
            .sharded()
            .client(clients[i].clone())
    };
    let mut subscriptions = Vec::new();
    for n in 0..24 {
        subscriptions.push(topic(1, n).subscribe().await.unwrap());
    }
    for n in 0..24 {
        assert_eq!(topic(0, n).publish(&n).await.unwrap(), 1);
    }
    for (n, s) in (0..).zip(subscriptions.iter_mut()) {
        assert_eq!(next(s).await.unwrap(), n, "each its own topic's message");
    }
    assert!(quiet(&mut subscriptions[0]).await);
    drop(subscriptions);
    // The connection unsubscribes in the background: soon nobody receives.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    for n in 0..24 {
        while topic(0, n).publish(&n).await.unwrap() != 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "shard-{n} still subscribed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Dropping a topic's last subscription and subscribing again at once (a per-request
/// subscription): each new subscription receives what is published after it returned, while
/// the connection may still be unsubscribing the old one.
async fn subscribing_again_right_after_dropping_receives(kind: Kind) {
    let client = common::client(kind, "pubsub-again");
    for topic in [
        Topic::<u64>::new("again").client(client.clone()),
        Topic::<u64>::new("again-s")
            .sharded()
            .client(client.clone()),
    ] {
        for n in 0..30 {
            let mut s = topic.subscribe().await.unwrap();
            topic.publish(&n).await.unwrap();
            assert_eq!(next(&mut s).await.unwrap(), n, "{}", topic.name());
        }
        assert_eq!(topic.stats().resubscribed, 0);
    }
}

on_both_backends!(
    subscribing_again_right_after_dropping_receives,
    a_sharded_topic_reaches_its_sharded_subscriptions_only,
    sharded_topics_of_many_slots_are_each_received_and_unsubscribed,
    every_subscription_of_every_client_receives_each_message,
    patterns_match_topics_within_the_namespace,
    a_message_of_another_type_is_a_notice_and_the_stream_goes_on,
    a_slow_subscriber_loses_its_oldest_messages_and_hears_how_many,
    dropping_the_last_subscription_unsubscribes,
);

/// `mem://` matches patterns as the server does: the same tricky patterns and topic names on
/// both, and the same topics received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_matches_patterns_as_the_server_does() {
    let patterns = [
        "h?llo",
        "h*llo",
        "h[ae]llo",
        "h[^e]llo",
        "h[a-b]llo",
        "h[b-a]llo",
        "h\\*llo",
        "h[",
        "h[\\]]llo",
        "*o",
        "h*l*o",
        "[^",
        "h[a-",
    ];
    let topics = [
        "hello", "hallo", "hbllo", "hllo", "heeello", "h*llo", "h]llo", "h[", "ho", "h", "o", "h-",
    ];
    let received = |kind: Kind| async move {
        let client = common::client(kind, "pubsub-globs");
        let mut subscriptions = Vec::new();
        for pattern in patterns {
            let s = Pattern::<u8>::new(pattern)
                .client(client.clone())
                .subscribe()
                .await
                .unwrap();
            subscriptions.push((pattern, s));
        }
        for topic in topics {
            Topic::<u8>::new(topic)
                .client(client.clone())
                .publish(&1)
                .await
                .unwrap();
        }
        let mut got = Vec::new();
        for (pattern, mut s) in subscriptions {
            while let Ok(Some(Ok(message))) =
                tokio::time::timeout(Duration::from_millis(300), s.next()).await
            {
                got.push(format!("{pattern} ~ {}", message.topic));
            }
        }
        got.sort();
        got
    };
    let server = received(Kind::Redis).await;
    assert!(server.len() > 10, "the server matched {server:?}");
    assert_eq!(received(Kind::Memory).await, server);
}
