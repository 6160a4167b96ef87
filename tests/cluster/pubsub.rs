//! Sharded pub/sub on the cluster: a sharded subscription lives on the primary owning its
//! channel's slot, and follows the slot when it migrates (Redis unsubscribes it there, and it
//! is subscribed again at the new owner), when its primary fails over, or when its connection
//! is killed, saying so with `Notice::Resubscribed`; later messages are received.

use std::time::Duration;

use futures::StreamExt;
use redis_patterns::pubsub::{Notice, Subscription, Topic};
use redis_patterns::{Client, Config, Error};

use super::SERIAL;
use crate::common::{self, cluster::cluster};

/// How long a renewal may take: the push or the heartbeat that notices it, a backoff,
/// dialling the cluster and subscribing.
const RENEWED_WITHIN: Duration = Duration::from_secs(10);

fn client(test: &str) -> (Client, String) {
    let ns = common::namespace(test);
    let client = common::client_in(&cluster().url(), &ns, Duration::from_millis(500));
    (client, ns)
}

async fn next(s: &mut Subscription<u64>) -> Result<u64, Notice> {
    tokio::time::timeout(RENEWED_WITHIN, s.next())
        .await
        .expect("nothing within the renewal bound")
        .expect("the subscription ended")
}

/// How many sharded subscriptions `channel` has on the primary on `port`.
fn subscribers_on(port: u16, channel: &str) -> i64 {
    let counts: Vec<redis::Value> = redis::cmd("PUBSUB")
        .arg("SHARDNUMSUB")
        .arg(channel)
        .query(&mut cluster().node(port).redis())
        .expect("PUBSUB SHARDNUMSUB");
    match counts.get(1) {
        Some(redis::Value::Int(n)) => *n,
        other => panic!("PUBSUB SHARDNUMSUB answered {other:?}"),
    }
}

/// The node on which `channel` has its one plain subscription.
fn node_of_plain(channel: &str) -> u16 {
    cluster()
        .nodes
        .iter()
        .find(|node| {
            let counts: Vec<redis::Value> = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(channel)
                .query(&mut node.redis())
                .expect("PUBSUB NUMSUB");
            matches!(counts.get(1), Some(redis::Value::Int(1)))
        })
        .map(|node| node.port())
        .expect("the node of the plain subscription")
}

/// A topic name of namespace `ns` whose sharded channel a primary other than `not_on` owns.
fn sharded_name_elsewhere(ns: &str, not_on: u16) -> String {
    (0..64)
        .map(|i| format!("quiet-{i}"))
        .find(|name| cluster().primary_of(&format!("{ns}:{name}")) != not_on)
        .expect("a channel of another primary")
}

/// The renewal notice, then a message published after it is received.
async fn renewed_and_receiving(topic: &Topic<u64>, s: &mut Subscription<u64>, value: u64) {
    let notice = next(s).await;
    assert!(
        matches!(notice, Err(Notice::Resubscribed)),
        "expected the renewal, got {notice:?}"
    );
    assert_eq!(
        topic.publish(&value).await.unwrap(),
        1,
        "its one subscription"
    );
    assert_eq!(next(s).await.unwrap(), value);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_subscription_follows_its_slot_when_it_migrates() {
    let _turn = SERIAL.lock().await;
    let (client, ns) = client("sharded-migration");
    let topic = Topic::<u64>::new("moving").sharded().client(client.clone());
    let channel = format!("{ns}:moving");
    let mut s = topic.subscribe().await.unwrap();
    // A plain subscription of the same client: its connection is not the sharded one's.
    let plain = Topic::<u64>::new("steady").client(client.clone());
    let mut steady = plain.subscribe().await.unwrap();
    let slot = cluster().slot_of(&channel);
    let from = cluster().primary_of_slot(slot);
    assert_eq!(
        subscribers_on(from, &channel),
        1,
        "subscribed at the slot's primary"
    );
    assert_eq!(topic.publish(&1).await.unwrap(), 1);
    assert_eq!(next(&mut s).await.unwrap(), 1);

    let to = cluster()
        .primaries()
        .into_iter()
        .find(|p| *p != from)
        .expect("another primary");
    cluster().migrate_slot(slot, to, Duration::ZERO);
    renewed_and_receiving(&topic, &mut s, 2).await;
    assert_eq!(
        subscribers_on(to, &channel),
        1,
        "subscribed at the new owner"
    );
    assert_eq!(
        subscribers_on(from, &channel),
        0,
        "and no longer at the old one"
    );
    assert_eq!(topic.stats().resubscribed, 1);
    plain.publish(&5).await.unwrap();
    assert_eq!(next(&mut steady).await.unwrap(), 5, "the plain one went on");
    assert_eq!(plain.stats().resubscribed, 0, "undisturbed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sharded_connection_is_renewed_and_says_so() {
    let _turn = SERIAL.lock().await;
    let (client, ns) = client("sharded-kill");
    let topic = Topic::<u64>::new("events").sharded().client(client.clone());
    let mut s = topic.subscribe().await.unwrap();
    let owner = cluster().primary_of(&format!("{ns}:events"));
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut cluster().node(owner).redis())
        .unwrap();
    assert!(killed >= 1, "the sharded subscription's connection");
    renewed_and_receiving(&topic, &mut s, 7).await;
}

/// `CLUSTER FAILOVER` of the primary owning a sharded channel: the subscription keeps
/// receiving what is published on the new primary. Where it then lives depends on timing:
/// renewed at the new primary (after an `sunsubscribe`, or a heartbeat that failed during the
/// switch, with `Notice::Resubscribed`), or still on the old primary, now the new one's
/// replica, which Redis keeps subscribed and sends the shard's messages to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_subscription_follows_a_failover() {
    let _turn = SERIAL.lock().await;
    let (client, ns) = client("sharded-failover");
    let topic = Topic::<u64>::new("failing")
        .sharded()
        .client(client.clone());
    let channel = format!("{ns}:failing");
    let mut s = topic.subscribe().await.unwrap();
    let primary = cluster().primary_of(&channel);
    let replica = cluster().replica_of(primary);
    let _: () = redis::cmd("CLUSTER")
        .arg("FAILOVER")
        .query(&mut replica.redis())
        .expect("CLUSTER FAILOVER");
    let key = channel.clone();
    tokio::task::spawn_blocking(move || super::until_moved_from(&key, primary))
        .await
        .unwrap();
    // Published until received: a message sent while the subscription is being renewed is
    // lost (at most once), and the renewal says so.
    let deadline = tokio::time::Instant::now() + RENEWED_WITHIN;
    loop {
        assert!(tokio::time::Instant::now() < deadline, "nothing received");
        topic.publish(&3).await.unwrap();
        match tokio::time::timeout(Duration::from_millis(500), s.next()).await {
            Ok(Some(Ok(3))) => break,
            Ok(Some(Err(Notice::Resubscribed))) | Err(_) => {}
            Ok(other) => panic!("unexpected {other:?}"),
        }
    }
    let now = cluster().primary_of(&channel);
    let shard = [now, cluster().replica_of(now).port()];
    let subscribed: i64 = shard
        .iter()
        .map(|port| subscribers_on(*port, &channel))
        .sum();
    assert_eq!(subscribed, 1, "subscribed once, within the shard");
}

/// The primary owning a sharded channel stops answering (`CLIENT PAUSE … ALL`, no failover):
/// the heartbeat's `PING` to every primary notices within the command timeout, and the
/// subscription is renewed once the node answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_primary_is_noticed_by_the_heartbeat() {
    let _turn = SERIAL.lock().await;
    let (client, ns) = client("sharded-silent");
    // A plain subscription: its connection is to one node, which keeps answering.
    let plain = Topic::<u64>::new("steady").client(client.clone());
    let mut steady = plain.subscribe().await.unwrap();
    // A sharded channel of another primary, which goes silent.
    let name = sharded_name_elsewhere(&ns, node_of_plain(&format!("{ns}:steady")));
    let owner = cluster().primary_of(&format!("{ns}:{name}"));
    let topic = Topic::<u64>::new(name).sharded().client(client.clone());
    let mut s = topic.subscribe().await.unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1_500)
        .arg("ALL")
        .query(&mut cluster().node(owner).redis())
        .expect("CLIENT PAUSE");
    renewed_and_receiving(&topic, &mut s, 11).await;
    plain.publish(&12).await.unwrap();
    assert_eq!(next(&mut steady).await.unwrap(), 12);
    assert_eq!(
        plain.stats().resubscribed,
        0,
        "only the sharded ones were renewed"
    );
}

/// A topic the ACL user may not use is refused at once on the cluster too, with a permission
/// error: sharded ones at each slot's primary, over all three, and a plain one; the client's
/// allowed subscriptions, sharded and plain, go on undisturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_topic_fails_at_once_and_the_others_go_on() {
    let _turn = SERIAL.lock().await;
    let ns = common::namespace("sharded-refused");
    let user = format!("user-{ns}");
    let open_channels = format!("&{ns}:open*");
    cluster().set_user(
        &user,
        &[
            "reset",
            "on",
            ">pw",
            "~*",
            "+@all",
            "resetchannels",
            &open_channels,
        ],
    );
    let client = Client::new(
        Config::from_url(&cluster().url())
            .unwrap()
            .username(&user)
            .password("pw")
            .namespace(&ns)
            .command_timeout(Duration::from_millis(500)),
    )
    .unwrap();
    let open = Topic::<u64>::new("open").sharded().client(client.clone());
    let mut sharded = open.subscribe().await.unwrap();
    let plain = Topic::<u64>::new("open-plain").client(client.clone());
    let mut steady = plain.subscribe().await.unwrap();

    // Forbidden sharded channels owned by each of the three primaries.
    let mut owners = std::collections::HashSet::new();
    let closed: Vec<String> = (0..64)
        .map(|i| format!("closed-{i}"))
        .filter(|name| owners.insert(cluster().primary_of(&format!("{ns}:{name}"))))
        .collect();
    assert_eq!(closed.len(), 3, "one per primary");
    let mut refused: Vec<Topic<u64>> = closed
        .iter()
        .map(|name| Topic::new(name.as_str()).sharded().client(client.clone()))
        .collect();
    refused.push(Topic::new("closed-plain").client(client.clone()));
    for topic in &refused {
        let started = std::time::Instant::now();
        match topic.subscribe().await {
            Err(Error::Permission(message)) => {
                assert!(message.contains("NOPERM"), "{message}");
            }
            other => panic!("expected a permission error, got {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "refused, not timed out"
        );
    }
    // An allowed and a refused sharded topic subscribed at once: only the refused one fails.
    let also_open = Topic::<u64>::new("open-2").sharded().client(client.clone());
    let (allowed, denied) = tokio::join!(also_open.subscribe(), refused[0].subscribe());
    let mut allowed = allowed.unwrap();
    assert!(matches!(denied, Err(Error::Permission(_))), "{denied:?}");

    assert_eq!(open.publish(&1).await.unwrap(), 1);
    assert_eq!(
        next(&mut sharded).await.unwrap(),
        1,
        "no renewal in between"
    );
    assert_eq!(also_open.publish(&2).await.unwrap(), 1);
    assert_eq!(next(&mut allowed).await.unwrap(), 2);
    plain.publish(&3).await.unwrap();
    assert_eq!(next(&mut steady).await.unwrap(), 3);
    assert_eq!(open.stats().resubscribed, 0, "the connection went on");
    assert_eq!(plain.stats().resubscribed, 0);
}

/// While the sharded channels' connection cannot be renewed (their primary silent), a new
/// plain subscription of the same client is confirmed and receives at once: channels and
/// patterns never wait for the sharded connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_subscriptions_do_not_wait_for_a_failing_sharded_connection() {
    let _turn = SERIAL.lock().await;
    let (client, ns) = client("sharded-failing");
    // The plain subscription's node, which keeps answering.
    let first = Topic::<u64>::new("first").client(client.clone());
    let _first = first.subscribe().await.unwrap();
    let name = sharded_name_elsewhere(&ns, node_of_plain(&format!("{ns}:first")));
    let owner = cluster().primary_of(&format!("{ns}:{name}"));
    let sharded = Topic::<u64>::new(name).sharded().client(client.clone());
    let _sharded = sharded.subscribe().await.unwrap();
    const PAUSE: Duration = Duration::from_secs(5);
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(PAUSE.as_millis() as u64)
        .arg("ALL")
        .query(&mut cluster().node(owner).redis())
        .expect("CLIENT PAUSE");
    let paused = std::time::Instant::now();
    // The heartbeat notices within the command timeout (500 ms); renewals then fail.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let fresh = Topic::<u64>::new("fresh").client(client.clone());
    let mut s = tokio::time::timeout(Duration::from_millis(2_500), fresh.subscribe())
        .await
        .expect("confirmed while the sharded connection still fails")
        .unwrap();
    fresh.publish(&1).await.unwrap();
    let received = tokio::time::timeout(Duration::from_millis(500), s.next())
        .await
        .expect("received at once");
    assert!(matches!(received, Some(Ok(1))), "{received:?}");
    assert!(paused.elapsed() < PAUSE, "all while the primary was silent");
    // Let the pause end before the next test takes its turn.
    tokio::time::sleep(PAUSE.saturating_sub(paused.elapsed())).await;
}
