//! Conformance checks of the facade's plain commands (`PING`, `GET`, `SET … PX`,
//! `SET … NX PX`, `DEL`, `PTTL`, `PUBLISH` and `SPUBLISH` with their subscriptions): exact
//! bytes, overwrites, TTLs and expiry, deliveries, the same on every backend.

use std::time::Duration;

use crate::client::Client;
use crate::test_util::Check;
use crate::test_util::conformance::{CheckResult, check, ensure, ensure_eq, scratch_key};

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!("backend/ping: the backend answers", ping_answers),
        check!(
            "backend/get: a missing key reads as none, a stored one as its exact bytes",
            get_reads_exact_bytes
        ),
        check!(
            "backend/get_many: each key's value or none, in order, whatever their slots",
            get_many_reads_each_key_in_order
        ),
        check!(
            "backend/set: replaces the value and its TTL",
            set_replaces_value_and_ttl
        ),
        check!(
            "backend/set: a value expires with its TTL",
            values_expire_with_their_ttl
        ),
        check!(
            "backend/set_nx: sets a missing or expired key with its TTL, never an existing one",
            set_nx_sets_only_a_missing_key
        ),
        check!(
            "backend/del: reports whether a live key was deleted",
            del_reports_a_deletion
        ),
        check!(
            "backend/pttl: none for a missing key, the time left for a stored one",
            pttl_reads_the_time_left
        ),
        check!(
            "backend/publish: reaches each subscribed channel and matching pattern once",
            publish_reaches_channels_and_patterns
        ),
        check!(
            "backend/spublish: reaches the sharded channel's subscriptions, no plain channel or pattern",
            spublish_reaches_sharded_subscriptions_only
        ),
    ]
}

async fn spublish_reaches_sharded_subscriptions_only(client: &Client) -> CheckResult {
    use crate::backend::pubsub::{Delivery, Kind, Publish};
    let b = client.backend();
    let channel = scratch_key(client);
    let pattern = format!("{}*", &channel[..channel.len().saturating_sub(1)]);
    ensure_eq!(
        b.publish(Publish::Sharded, channel.as_bytes(), b"x")
            .await?,
        0,
        "nobody yet"
    );
    let (_s, mut sharded) = b.subscribe(Kind::Shard, channel.as_bytes(), 8).await?;
    let (_c, mut plain) = b.subscribe(Kind::Channel, channel.as_bytes(), 8).await?;
    let (_p, mut by_pattern) = b.subscribe(Kind::Pattern, pattern.as_bytes(), 8).await?;
    // Exact on a cluster too: a sharded channel's subscriptions are on its slot's shard.
    ensure_eq!(
        b.publish(Publish::Sharded, channel.as_bytes(), b"s")
            .await?,
        1,
        "receivers"
    );
    let got = tokio::time::timeout(Duration::from_secs(5), sharded.recv()).await;
    match got {
        Ok(Ok(Delivery::Message {
            channel: on,
            payload,
        })) => {
            ensure_eq!(&on[..], channel.as_bytes(), "the sharded message's channel");
            ensure_eq!(&payload[..], b"s", "the sharded message's payload");
        }
        other => ensure!(false, "the sharded subscription got {other:?}"),
    }
    // A plain publish after it: what the others receive first is that one.
    b.publish(Publish::Plain, channel.as_bytes(), b"p").await?;
    for (what, buffer) in [("channel", &mut plain), ("pattern", &mut by_pattern)] {
        let got = tokio::time::timeout(Duration::from_secs(5), buffer.recv()).await;
        match got {
            Ok(Ok(Delivery::Message { payload, .. })) => {
                ensure_eq!(&payload[..], b"p", "the {what}'s first message");
            }
            other => ensure!(false, "the {what} subscription got {other:?}"),
        }
    }
    ensure!(
        sharded.is_empty(),
        "a plain publish reached the sharded subscription"
    );
    Ok(())
}

async fn publish_reaches_channels_and_patterns(client: &Client) -> CheckResult {
    // A channel and a pattern matching it (the channel's name with its last byte as `*`).
    use crate::backend::pubsub::{Delivery, Kind, Publish};
    let b = client.backend();
    let channel = scratch_key(client);
    let pattern = format!("{}*", &channel[..channel.len().saturating_sub(1)]);
    ensure_eq!(
        b.publish(Publish::Plain, channel.as_bytes(), b"x").await?,
        0,
        "nobody yet"
    );
    let (_c, mut by_channel) = b.subscribe(Kind::Channel, channel.as_bytes(), 8).await?;
    let (_p, mut by_pattern) = b.subscribe(Kind::Pattern, pattern.as_bytes(), 8).await?;
    // One server counts both; a cluster counts those of the node that took the `PUBLISH`
    // (tests/pubsub.rs checks the exact count where it is exact).
    let received = b
        .publish(Publish::Plain, channel.as_bytes(), b"hello")
        .await?;
    ensure!(received <= 2, "{received} receivers of two subscriptions");
    for (what, buffer) in [("channel", &mut by_channel), ("pattern", &mut by_pattern)] {
        let got = tokio::time::timeout(Duration::from_secs(5), buffer.recv()).await;
        match got {
            Ok(Ok(Delivery::Message {
                channel: on,
                payload,
            })) => {
                ensure_eq!(&on[..], channel.as_bytes(), "the {what}'s message channel");
                ensure_eq!(&payload[..], b"hello", "the {what}'s message payload");
            }
            other => ensure!(false, "the {what} subscription got {other:?}"),
        }
    }
    Ok(())
}

async fn set_nx_sets_only_a_missing_key(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), scratch_key(client));
    let ttl = Duration::from_secs(10);
    ensure!(
        b.set_nx(&k, b"first", ttl).await?,
        "SET NX of a missing key"
    );
    ensure!(
        !b.set_nx(&k, b"second", Duration::from_secs(60)).await?,
        "SET NX of an existing key reports a write"
    );
    ensure_eq!(
        b.get(&k).await?.as_deref(),
        Some(&b"first"[..]),
        "the value after a refused SET NX"
    );
    let left = b.pttl(&k).await?;
    ensure!(
        left.is_some_and(|t| t > ttl / 10 * 9 && t <= ttl),
        "the TTL after SET NX with 10 s, then a refused one with 60 s: {left:?}"
    );
    let short = Duration::from_millis(100);
    let k2 = scratch_key(client);
    ensure!(
        b.set_nx(&k2, b"old", short).await?,
        "SET NX of a missing key"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    ensure!(
        b.set_nx(&k2, b"new", ttl).await?,
        "SET NX of a key whose TTL ran out"
    );
    ensure_eq!(
        b.get(&k2).await?.as_deref(),
        Some(&b"new"[..]),
        "the value after SET NX of an expired key"
    );
    Ok(())
}

async fn ping_answers(client: &Client) -> CheckResult {
    client.backend().ping().await?;
    Ok(())
}

async fn get_reads_exact_bytes(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), scratch_key(client));
    ensure_eq!(b.get(&k).await?, None, "GET of a missing key");
    let binary: Vec<u8> = (0..=255).collect();
    b.set(&k, binary.clone(), Duration::from_secs(60)).await?;
    ensure_eq!(
        b.get(&k).await?.as_deref(),
        Some(&binary[..]),
        "GET of every byte value"
    );
    b.set(&k, Vec::new(), Duration::from_secs(60)).await?;
    ensure_eq!(
        b.get(&k).await?.as_deref(),
        Some(&b""[..]),
        "GET of an empty value (stored, not missing)"
    );
    Ok(())
}

async fn get_many_reads_each_key_in_order(client: &Client) -> CheckResult {
    let b = client.backend();
    let keys: Vec<String> = (0..4).map(|_| scratch_key(client)).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    ensure_eq!(
        b.get_many(&refs).await?,
        vec![None; 4],
        "GET of four missing keys"
    );
    b.set(&keys[0], b"a".to_vec(), Duration::from_secs(60))
        .await?;
    b.set(&keys[2], Vec::new(), Duration::from_secs(60)).await?;
    b.set(&keys[3], vec![0, 255], Duration::from_secs(60))
        .await?;
    let expected = vec![
        Some(bytes::Bytes::from_static(b"a")),
        None,
        Some(bytes::Bytes::new()),
        Some(bytes::Bytes::from_static(&[0, 255])),
    ];
    ensure_eq!(
        b.get_many(&refs).await?,
        expected,
        "GET of four keys, one missing"
    );
    ensure_eq!(b.get_many(&[]).await?, Vec::new(), "GET of no key");
    Ok(())
}

async fn set_replaces_value_and_ttl(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), scratch_key(client));
    b.set(&k, b"v1".to_vec(), Duration::from_secs(60)).await?;
    b.set(&k, b"v2".to_vec(), Duration::from_millis(500))
        .await?;
    ensure_eq!(
        b.get(&k).await?.as_deref(),
        Some(&b"v2"[..]),
        "GET after a second SET"
    );
    let ttl = b.pttl(&k).await?;
    ensure!(
        ttl.is_some_and(|t| t > Duration::ZERO && t <= Duration::from_millis(500)),
        "the second SET's TTL (500 ms) replaces the first's (60 s): PTTL is {ttl:?}"
    );
    Ok(())
}

async fn values_expire_with_their_ttl(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), scratch_key(client));
    b.set(&k, b"v".to_vec(), Duration::from_millis(200)).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure_eq!(b.get(&k).await?, None, "GET 300 ms after a SET PX 200");
    ensure_eq!(b.pttl(&k).await?, None, "PTTL of an expired key");
    ensure!(
        !b.del(&k).await?,
        "DEL of an expired key reports a deletion"
    );
    Ok(())
}

async fn del_reports_a_deletion(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), scratch_key(client));
    ensure!(!b.del(&k).await?, "DEL of a missing key reports a deletion");
    b.set(&k, b"v".to_vec(), Duration::from_secs(60)).await?;
    ensure!(b.del(&k).await?, "DEL of a stored key reports none");
    ensure_eq!(b.get(&k).await?, None, "GET after DEL");
    ensure!(!b.del(&k).await?, "a second DEL reports a deletion");
    Ok(())
}

async fn pttl_reads_the_time_left(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), scratch_key(client));
    ensure_eq!(b.pttl(&k).await?, None, "PTTL of a missing key");
    b.set(&k, b"v".to_vec(), Duration::from_secs(10)).await?;
    let ttl = b.pttl(&k).await?;
    ensure!(
        ttl.is_some_and(|t| t > Duration::from_secs(9) && t <= Duration::from_secs(10)),
        "PTTL right after SET PX 10000 is {ttl:?}"
    );
    b.del(&k).await?;
    Ok(())
}
