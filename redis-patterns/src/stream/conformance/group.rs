//! Conformance checks of the consumer groups' own operations (`ops/group.rs`): creating
//! groups, blocking reads, acknowledgements, the pending count and forgetting consumers; and
//! the helpers of `failure.rs`, which checks those of failed and idle events.

use std::time::Duration;

use super::super::ops::{Ack, Append, CreateGroup, Delivered, PendingCount, Prune, ReadGroup};
use crate::backend::Blocking;
use crate::client::Client;
use crate::stream::EventId;
use crate::test_util::Check;
use crate::test_util::conformance::{CheckResult, check, ensure, ensure_eq, scratch_key};

pub(crate) fn checks() -> Vec<Check> {
    let mut checks = vec![
        check!(
            "stream/create_group: once (then it exists), with the stream, from the start or the end",
            create_group_once
        ),
        check!(
            "stream/read_group: new events split among consumers; a blocked read gets the next append",
            read_group_splits_and_blocks
        ),
        check!(
            "stream/read_group: a missing group is an error",
            read_group_needs_the_group
        ),
        check!("stream/ack: acknowledges pending events once", ack_once),
        check!(
            "stream/pending: counts delivered, unacknowledged events",
            pending_counts
        ),
        check!(
            "stream/prune: forgets idle consumers without pending events, and one leaving",
            prune_idle
        ),
    ];
    checks.extend(super::failure::checks());
    checks
}

pub(super) struct Keys {
    pub(super) stream: String,
    pub(super) dead: String,
}

pub(super) fn keys(client: &Client) -> Keys {
    let base = scratch_key(client);
    Keys {
        stream: format!("{base}:stream"),
        dead: format!("{base}:dead:g"),
    }
}

pub(super) async fn append(
    client: &Client,
    keys: &Keys,
    payload: &str,
) -> Result<EventId, crate::Error> {
    let op = Append {
        key: &keys.stream,
        payload: payload.as_bytes(),
        cap: 1_000,
    };
    client.backend().exec(&op).await
}

pub(super) async fn create(
    client: &Client,
    keys: &Keys,
    from_start: bool,
) -> Result<bool, crate::Error> {
    let op = CreateGroup {
        key: &keys.stream,
        group: "g",
        from_start,
    };
    client.backend().run(&op).await
}

pub(super) async fn read(
    client: &Client,
    keys: &Keys,
    consumer: &str,
    count: usize,
) -> Result<Vec<Delivered>, crate::Error> {
    let op = ReadGroup {
        key: &keys.stream,
        group: "g",
        consumer,
        count,
        block: Duration::ZERO,
    };
    client.backend().exec(&op).await
}

pub(super) async fn pending(client: &Client, keys: &Keys) -> Result<u64, crate::Error> {
    let op = PendingCount {
        key: &keys.stream,
        group: "g",
    };
    client.backend().exec(&op).await
}

async fn create_group_once(client: &Client) -> CheckResult {
    let keys = keys(client);
    ensure!(create(client, &keys, true).await?, "created");
    ensure!(!create(client, &keys, true).await?, "existed");
    ensure_eq!(pending(client, &keys).await?, 0, "a new group");
    append(client, &keys, "1").await?;
    let op = CreateGroup {
        key: &keys.stream,
        group: "late",
        from_start: false,
    };
    ensure!(client.backend().run(&op).await?, "the second group created");
    let op = ReadGroup {
        key: &keys.stream,
        group: "late",
        consumer: "c",
        count: 10,
        block: Duration::ZERO,
    };
    ensure!(
        client.backend().exec(&op).await?.is_empty(),
        "a group from the end skips earlier events"
    );
    ensure_eq!(
        read(client, &keys, "c", 10).await?.len(),
        1,
        "from the start"
    );
    Ok(())
}

async fn read_group_splits_and_blocks(client: &Client) -> CheckResult {
    let keys = keys(client);
    create(client, &keys, true).await?;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(append(client, &keys, &n.to_string()).await?);
    }
    let a = read(client, &keys, "a", 3).await?;
    let b = read(client, &keys, "b", 10).await?;
    let got: Vec<EventId> = a.iter().chain(&b).map(|d| d.id).collect();
    ensure_eq!(got, ids, "each event once, in order");
    ensure_eq!(a.len(), 3, "COUNT");
    ensure_eq!(
        a[0].payload.as_deref(),
        Some(&b"0"[..]),
        "the payload (field d)"
    );
    ensure!(
        a.iter().all(|d| d.deliveries == 1),
        "first deliveries: {a:?}"
    );
    ensure!(read(client, &keys, "a", 10).await?.is_empty(), "none new");
    // A blocked read returns the next append.
    let mut blocking = Blocking::new(client.inner().backend.clone());
    let blocked = async {
        let op = ReadGroup {
            key: &keys.stream,
            group: "g",
            consumer: "a",
            count: 10,
            block: Duration::from_millis(900),
        };
        blocking.exec(&op).await
    };
    let later = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        append(client, &keys, "late").await
    };
    let (got, appended) = tokio::join!(blocked, later);
    let got = got?;
    ensure_eq!(got.len(), 1, "the blocked read got the append");
    ensure_eq!(Some(got[0].id), appended.ok(), "the appended id");
    Ok(())
}

async fn read_group_needs_the_group(client: &Client) -> CheckResult {
    let keys = keys(client);
    append(client, &keys, "1").await?;
    ensure!(
        read(client, &keys, "a", 1).await.is_err(),
        "read without a group"
    );
    Ok(())
}

async fn ack_once(client: &Client) -> CheckResult {
    let keys = keys(client);
    create(client, &keys, true).await?;
    let first = append(client, &keys, "1").await?;
    let second = append(client, &keys, "2").await?;
    read(client, &keys, "a", 10).await?;
    let op = Ack {
        key: &keys.stream,
        group: "g",
        ids: &[first, second, EventId::default()],
    };
    ensure_eq!(client.backend().exec(&op).await?, 2, "both pending acked");
    ensure_eq!(client.backend().exec(&op).await?, 0, "acked before");
    Ok(())
}

async fn pending_counts(client: &Client) -> CheckResult {
    let keys = keys(client);
    ensure!(pending(client, &keys).await.is_err(), "no group");
    create(client, &keys, true).await?;
    for n in 0..3 {
        append(client, &keys, &n.to_string()).await?;
    }
    ensure_eq!(pending(client, &keys).await?, 0, "not yet delivered");
    let read = read(client, &keys, "a", 2).await?;
    ensure_eq!(pending(client, &keys).await?, 2, "delivered");
    let op = Ack {
        key: &keys.stream,
        group: "g",
        ids: &[read[0].id],
    };
    client.backend().exec(&op).await?;
    ensure_eq!(pending(client, &keys).await?, 1, "one acked");
    Ok(())
}

async fn prune_idle(client: &Client) -> CheckResult {
    let keys = keys(client);
    create(client, &keys, true).await?;
    for n in 0..3 {
        append(client, &keys, &n.to_string()).await?;
    }
    // A consumer exists once it was handed an event.
    read(client, &keys, "busy", 1).await?;
    for consumer in ["idle", "me"] {
        let handed = read(client, &keys, consumer, 1).await?;
        let ids: Vec<EventId> = handed.iter().map(|d| d.id).collect();
        let op = Ack {
            key: &keys.stream,
            group: "g",
            ids: &ids,
        };
        client.backend().exec(&op).await?;
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    let prune = |idle, leaving| Prune {
        key: &keys.stream,
        group: "g",
        consumer: "me",
        idle,
        leaving,
    };
    ensure_eq!(
        client
            .backend()
            .run(&prune(Duration::from_secs(60), false))
            .await?,
        0,
        "none idle for a minute"
    );
    // `busy` has a pending event and stays; `idle` goes; `me` stays until leaving.
    ensure_eq!(
        client
            .backend()
            .run(&prune(Duration::from_millis(50), false))
            .await?,
        1,
        "the idle one"
    );
    ensure_eq!(
        client
            .backend()
            .run(&prune(Duration::from_secs(60), true))
            .await?,
        1,
        "me, leaving"
    );
    ensure_eq!(pending(client, &keys).await?, 1, "busy's event kept");
    let missing = Prune {
        key: &keys.stream,
        group: "nope",
        consumer: "me",
        idle: Duration::ZERO,
        leaving: true,
    };
    ensure_eq!(client.backend().run(&missing).await?, 0, "no group");
    Ok(())
}
