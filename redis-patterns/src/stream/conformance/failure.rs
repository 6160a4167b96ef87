//! Conformance checks of the operations on failed and idle events (`ops/failure.rs`, and
//! `extend.lua`): failures, retries, claims of idle events, renewals, and dead letters.

use std::time::Duration;

use super::group::{Keys, append, create, keys, pending, read};
use crate::client::Client;
use crate::stream::EventId;
use crate::stream::ops::{
    DeadLetters, Delivered, Extend, FIELD, Fail, Failed, Held, Reclaim, Retried, Retry, field,
};
use crate::test_util::Check;
use crate::test_util::conformance::{CheckResult, check, ensure, ensure_eq};

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!(
            "stream/fail: pending below max_deliveries, then dead-lettered; another's event is lost",
            fail_then_dead_letter
        ),
        check!(
            "stream/retry: delivers again counting the delivery, only to its consumer",
            retry_counts
        ),
        check!(
            "stream/reclaim: claims idle events only, dead-letters those past max_deliveries",
            reclaim_idle
        ),
        check!(
            "stream/extend: renews the consumer's own claim only",
            extend_renews
        ),
        check!(
            "stream/dead_letters: the oldest first, with every field",
            dead_letters_in_order
        ),
    ]
}

/// The event `id`, pending for `consumer` of the group `g`.
fn held<'a>(keys: &'a Keys, consumer: &'a str, id: EventId) -> Held<'a> {
    Held {
        key: &keys.stream,
        group: "g",
        consumer,
        id,
    }
}

fn fail<'a>(keys: &'a Keys, consumer: &'a str, id: EventId, max: u64) -> Fail<'a> {
    Fail {
        event: held(keys, consumer, id),
        dead: &keys.dead,
        error: "boom",
        max_deliveries: max,
        dead_cap: 1_000,
    }
}

fn reclaim<'a>(keys: &'a Keys, consumer: &'a str, min_idle: Duration, max: u64) -> Reclaim<'a> {
    Reclaim {
        key: &keys.stream,
        dead: &keys.dead,
        group: "g",
        consumer,
        min_idle,
        cursor: EventId::default(),
        count: 10,
        max_deliveries: max,
        dead_cap: 1_000,
    }
}

async fn fail_then_dead_letter(client: &Client) -> CheckResult {
    let keys = keys(client);
    create(client, &keys, true).await?;
    let id = append(client, &keys, "poison").await?;
    read(client, &keys, "a", 1).await?;
    ensure_eq!(
        client.backend().run(&fail(&keys, "b", id, 2)).await?,
        Failed::Lost,
        "another consumer's event"
    );
    ensure_eq!(
        client.backend().run(&fail(&keys, "a", id, 2)).await?,
        Failed::Pending { deliveries: 1 },
        "below max"
    );
    ensure_eq!(pending(client, &keys).await?, 1, "still pending");
    ensure_eq!(
        client.backend().run(&fail(&keys, "a", id, 1)).await?,
        Failed::DeadLettered,
        "at max"
    );
    ensure_eq!(pending(client, &keys).await?, 0, "acknowledged");
    let op = DeadLetters {
        dead: &keys.dead,
        count: 10,
    };
    let letters = client.backend().exec(&op).await?;
    ensure_eq!(letters.len(), 1, "one dead letter");
    let fields = &letters[0].1;
    let text = |name| field(fields, name).map(|v| String::from_utf8_lossy(v).into_owned());
    ensure_eq!(text(FIELD).as_deref(), Some("poison"), "the payload");
    ensure_eq!(text("id"), Some(id.to_string()), "the event's id");
    ensure_eq!(text("error").as_deref(), Some("boom"), "the error");
    ensure_eq!(text("deliveries").as_deref(), Some("1"), "deliveries");
    ensure_eq!(text("group").as_deref(), Some("g"), "group");
    ensure_eq!(text("consumer").as_deref(), Some("a"), "consumer");
    ensure_eq!(
        client.backend().run(&fail(&keys, "a", id, 1)).await?,
        Failed::Lost,
        "after dead-lettering"
    );
    Ok(())
}

async fn retry_counts(client: &Client) -> CheckResult {
    let keys = keys(client);
    create(client, &keys, true).await?;
    let id = append(client, &keys, "again").await?;
    read(client, &keys, "a", 1).await?;
    let retry = |consumer| Retry(held(&keys, consumer, id));
    ensure_eq!(
        client.backend().run(&retry("b")).await?,
        Retried::Lost,
        "another consumer's"
    );
    let expected = Delivered {
        id,
        payload: Some("again".into()),
        deliveries: 2,
    };
    ensure_eq!(
        client.backend().run(&retry("a")).await?,
        Retried::Again(expected),
        "the second delivery"
    );
    ensure_eq!(
        client.backend().run(&fail(&keys, "a", id, 5)).await?,
        Failed::Pending { deliveries: 2 },
        "the count stuck"
    );
    Ok(())
}

async fn reclaim_idle(client: &Client) -> CheckResult {
    let keys = keys(client);
    create(client, &keys, true).await?;
    let first = append(client, &keys, "1").await?;
    let second = append(client, &keys, "2").await?;
    read(client, &keys, "dead", 1).await?;
    let none = client
        .backend()
        .run(&reclaim(&keys, "live", Duration::from_secs(60), 5))
        .await?;
    ensure!(
        none.claimed.is_empty(),
        "nothing idle long enough: {none:?}"
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    read(client, &keys, "dead", 1).await?;
    // The first is idle for 60 ms, the second was just delivered.
    let got = client
        .backend()
        .run(&reclaim(&keys, "live", Duration::from_millis(50), 5))
        .await?;
    ensure_eq!(got.cursor, EventId::default(), "scanned to the end");
    ensure_eq!(got.dead, 0, "none dead");
    let expected = vec![Delivered {
        id: first,
        payload: Some("1".into()),
        deliveries: 2,
    }];
    ensure_eq!(got.claimed, expected, "the idle event, its second delivery");
    // Claimed by `live` now: a retry by `dead` finds it gone.
    let retry = Retry(held(&keys, "dead", first));
    ensure_eq!(client.backend().run(&retry).await?, Retried::Lost, "moved");
    tokio::time::sleep(Duration::from_millis(60)).await;
    let got = client
        .backend()
        .run(&reclaim(&keys, "live", Duration::from_millis(50), 1))
        .await?;
    ensure_eq!(got.dead, 2, "both past max_deliveries 1");
    ensure!(got.claimed.is_empty(), "none handed out: {got:?}");
    ensure_eq!(pending(client, &keys).await?, 0, "acknowledged");
    let op = DeadLetters {
        dead: &keys.dead,
        count: 10,
    };
    let letters = client.backend().exec(&op).await?;
    let ids: Vec<Option<String>> = letters
        .iter()
        .map(|(_, f)| field(f, "id").map(|v| String::from_utf8_lossy(v).into_owned()))
        .collect();
    ensure_eq!(
        ids,
        vec![Some(first.to_string()), Some(second.to_string())],
        "dead letters"
    );
    let deliveries: Vec<Option<&[u8]>> = letters
        .iter()
        .map(|(_, f)| field(f, "deliveries").map(|v| &v[..]))
        .collect();
    ensure_eq!(
        deliveries,
        vec![Some(&b"2"[..]), Some(&b"1"[..])],
        "deliveries before the claim"
    );
    Ok(())
}

async fn extend_renews(client: &Client) -> CheckResult {
    let keys = keys(client);
    create(client, &keys, true).await?;
    let id = append(client, &keys, "slow").await?;
    read(client, &keys, "a", 1).await?;
    tokio::time::sleep(Duration::from_millis(60)).await;
    let extend = |consumer| Extend(held(&keys, consumer, id));
    ensure!(
        !client.backend().run(&extend("b")).await?,
        "another consumer's event"
    );
    ensure!(client.backend().run(&extend("a")).await?, "renewed");
    let got = client
        .backend()
        .run(&reclaim(&keys, "b", Duration::from_millis(50), 5))
        .await?;
    ensure!(got.claimed.is_empty(), "renewed, not idle: {got:?}");
    ensure_eq!(
        client.backend().run(&fail(&keys, "a", id, 5)).await?,
        Failed::Pending { deliveries: 1 },
        "no delivery counted"
    );
    Ok(())
}

async fn dead_letters_in_order(client: &Client) -> CheckResult {
    let keys = keys(client);
    let op = DeadLetters {
        dead: &keys.dead,
        count: 10,
    };
    ensure!(
        client.backend().exec(&op).await?.is_empty(),
        "none for a missing stream"
    );
    create(client, &keys, true).await?;
    let mut ids = Vec::new();
    for n in 0..3 {
        let id = append(client, &keys, &n.to_string()).await?;
        read(client, &keys, "a", 1).await?;
        client.backend().run(&fail(&keys, "a", id, 1)).await?;
        ids.push(id.to_string());
    }
    let op = DeadLetters {
        dead: &keys.dead,
        count: 2,
    };
    let letters = client.backend().exec(&op).await?;
    let got: Vec<String> = letters
        .iter()
        .filter_map(|(_, f)| field(f, "id").map(|v| String::from_utf8_lossy(v).into_owned()))
        .collect();
    ensure_eq!(got, ids[..2].to_vec(), "the oldest two");
    Ok(())
}
