//! Conformance checks of the counters' atomic operations (`ops.rs`): an increment and its
//! expiry in one step for each expiry mode, Redis's errors for a non-integer or an overflow,
//! reads of missing windows, and HyperLogLog additions and counts (union over windows).

use std::time::Duration;

use super::ops::{Expiry, IncrBy, Read, UniqueAdd, UniqueCount};
use crate::client::Client;
use crate::test_util::Check;
use crate::test_util::conformance::{CheckResult, check, ensure, ensure_eq, scratch_key};
use crate::util::window;

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!(
            "counter/incr: a counter created by an increment expires ttl after it; later increments keep that expiry",
            incr_after_first,
        ),
        check!(
            "counter/incr: a sliding counter's TTL restarts at every increment",
            incr_after_last,
        ),
        check!(
            "counter/incr: a window's counter expires at the absolute time given",
            incr_at,
        ),
        check!(
            "counter/incr: a key that is not an integer, or an overflow, fails and changes nothing",
            incr_fails_as_redis_does,
        ),
        check!(
            "counter/read: missing counters read 0, others their value, in key order",
            read_in_key_order,
        ),
        check!(
            "counter/unique_add: answers whether the estimate changed, and sets the expiry",
            unique_add,
        ),
        check!(
            "counter/unique_count: counts distinct elements within 2 %, and the union of several logs",
            unique_count,
        ),
    ]
}

const HOUR: Duration = Duration::from_secs(3600);

async fn incr(client: &Client, key: &str, by: i64, expiry: Expiry) -> crate::Result<i64> {
    client.backend().exec(&IncrBy { key, by, expiry }).await
}

async fn ttl(client: &Client, key: &str) -> crate::Result<Option<Duration>> {
    client.backend().pttl(key).await
}

async fn incr_after_first(client: &Client) -> CheckResult {
    let key = format!("{}:count", scratch_key(client));
    let short = Duration::from_millis(300);
    ensure_eq!(
        incr(client, &key, 1, Expiry::AfterFirst(short)).await?,
        1,
        "the first increment"
    );
    let first = ttl(client, &key).await?;
    ensure!(
        first.is_some_and(|t| t > Duration::ZERO && t <= short),
        "the TTL {first:?} after the first increment is not within (0, {short:?}]"
    );
    ensure_eq!(
        incr(client, &key, 4, Expiry::AfterFirst(HOUR)).await?,
        5,
        "the second increment"
    );
    let second = ttl(client, &key).await?;
    ensure!(
        second.is_some_and(|t| t <= short),
        "a later increment changed the TTL to {second:?}"
    );
    tokio::time::sleep(short + Duration::from_millis(50)).await;
    ensure_eq!(
        incr(client, &key, 1, Expiry::AfterFirst(HOUR)).await?,
        1,
        "after the TTL, a new counter"
    );
    Ok(())
}

async fn incr_after_last(client: &Client) -> CheckResult {
    let key = format!("{}:count", scratch_key(client));
    incr(client, &key, 1, Expiry::AfterLast(Duration::from_secs(5))).await?;
    ensure_eq!(
        incr(client, &key, -3, Expiry::AfterLast(HOUR)).await?,
        -2,
        "a decrement"
    );
    let after = ttl(client, &key).await?;
    ensure!(
        after.is_some_and(|t| t > Duration::from_secs(3500) && t <= HOUR),
        "the TTL {after:?} did not restart at the latest increment"
    );
    Ok(())
}

async fn incr_at(client: &Client) -> CheckResult {
    let key = format!("{}:count:1", scratch_key(client));
    let at = window::now() + Duration::from_secs(100);
    incr(client, &key, 7, Expiry::At(at)).await?;
    let left = ttl(client, &key).await?;
    ensure!(
        left.is_some_and(|t| t > Duration::from_secs(95) && t <= Duration::from_secs(100)),
        "the TTL {left:?} is not about 100 s"
    );
    let past = format!("{}:count:2", scratch_key(client));
    incr(client, &past, 1, Expiry::At(Duration::from_secs(1))).await?;
    ensure_eq!(
        client.backend().get(&past).await?,
        None,
        "an expiry already past deletes the counter"
    );
    Ok(())
}

async fn incr_fails_as_redis_does(client: &Client) -> CheckResult {
    let key = format!("{}:count", scratch_key(client));
    client.backend().set(&key, b"twelve".to_vec(), HOUR).await?;
    let text = incr(client, &key, 1, Expiry::AfterLast(HOUR)).await;
    ensure!(text.is_err(), "incrementing text answered {text:?}");
    let max = i64::MAX.to_string().into_bytes();
    client.backend().set(&key, max.clone(), HOUR).await?;
    let overflow = incr(client, &key, 1, Expiry::AfterFirst(HOUR)).await;
    ensure!(overflow.is_err(), "an overflow answered {overflow:?}");
    ensure_eq!(
        client.backend().get(&key).await?.as_deref(),
        Some(&max[..]),
        "the counter after a failed increment"
    );
    Ok(())
}

async fn read_in_key_order(client: &Client) -> CheckResult {
    let base = scratch_key(client);
    let keys: Vec<String> = (0..3).map(|i| format!("{base}:count:{i}")).collect();
    incr(client, &keys[2], 9, Expiry::AfterFirst(HOUR)).await?;
    incr(client, &keys[0], -1, Expiry::AfterFirst(HOUR)).await?;
    let values = client.backend().exec(&Read { keys: &keys }).await?;
    ensure_eq!(values, vec![-1, 0, 9], "MGET of three counters");
    Ok(())
}

async fn unique_add(client: &Client) -> CheckResult {
    let key = format!("{}:hll:1", scratch_key(client));
    let at = window::now() + Duration::from_secs(100);
    let key = key.as_str();
    let add = |elements: &'static [&'static str]| async move {
        let op = UniqueAdd {
            key,
            elements,
            expires_at: at,
        };
        client.backend().exec(&op).await
    };
    ensure_eq!(add(&["a", "b"]).await?, true, "adding to a new log");
    ensure_eq!(
        add(&["b", "a"]).await?,
        false,
        "adding the same elements again"
    );
    ensure_eq!(add(&[]).await?, false, "adding nothing to a log");
    let left = ttl(client, key).await?;
    ensure!(
        left.is_some_and(|t| t > Duration::from_secs(95) && t <= Duration::from_secs(100)),
        "the TTL {left:?} is not about 100 s"
    );
    Ok(())
}

async fn unique_count(client: &Client) -> CheckResult {
    let base = scratch_key(client);
    let keys: Vec<String> = (0..3).map(|i| format!("{base}:hll:{i}")).collect();
    let at = window::now() + Duration::from_secs(100);
    let first: Vec<String> = (0..5000).map(|i| format!("user-{i}")).collect();
    let second: Vec<String> = (2500..7500).map(|i| format!("user-{i}")).collect();
    for (key, elements) in [(&keys[0], &first), (&keys[1], &second)] {
        let op = UniqueAdd {
            key,
            elements,
            expires_at: at,
        };
        client.backend().exec(&op).await?;
    }
    let one = client
        .backend()
        .exec(&UniqueCount { keys: &keys[..1] })
        .await?;
    ensure!(
        one.abs_diff(5000) <= 100,
        "5000 distinct elements counted {one}"
    );
    let union = client.backend().exec(&UniqueCount { keys: &keys }).await?;
    ensure!(
        union.abs_diff(7500) <= 150,
        "the union of 5000 and 5000 elements, 2500 shared, counted {union}"
    );
    let missing = client
        .backend()
        .exec(&UniqueCount { keys: &keys[2..] })
        .await?;
    ensure_eq!(missing, 0, "a missing log");
    Ok(())
}
