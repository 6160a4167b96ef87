//! Conformance checks of the queue's operations (`ops.rs`): pushing, claiming with leases,
//! completing, failing, renewing, waiting for work, counting, and the dead list.

use std::time::Duration;

use super::ops::{
    Claim, ClaimNext, Claimed, Complete, Count, Counts, DeadJobs, Extend, Fail, Failed, Keys,
    Leased, Push, STOPPED, Wait,
};
use crate::backend::Blocking;
use crate::client::Client;
use crate::test_util::Check;
use crate::test_util::conformance::{CheckResult, check, ensure, ensure_eq, scratch_key};

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!("queue/push: once per id, ready or delayed", push_once),
        check!(
            "queue/claim: in order with a lease, counting attempts; due jobs promoted",
            claim_in_order
        ),
        check!(
            "queue/claim: an expired lease goes back to the queue, or dead after the last attempt",
            claim_takes_back_expired_leases
        ),
        check!(
            "queue/complete: only by the lease's owner, once",
            complete_by_owner
        ),
        check!(
            "queue/fail: retried after the backoff, dead after the last attempt",
            fail_retries_then_buries
        ),
        check!(
            "queue/extend: renews the owner's lease only",
            extend_by_owner
        ),
        check!("queue/wait: a push wakes a waiting worker", wait_for_a_push),
        check!(
            "queue/count: ready, delayed and running jobs",
            count_by_state
        ),
        check!(
            "queue/dead_jobs: the oldest first, as JSON records",
            dead_jobs_in_order
        ),
    ]
}

fn keys(client: &Client) -> Keys {
    Keys::new(&scratch_key(client))
}

async fn push(client: &Client, keys: &Keys, id: &str, delay: Duration) -> crate::Result<bool> {
    let op = Push {
        keys,
        id,
        payload: id.as_bytes(),
        delay,
    };
    client.backend().run(&op).await
}

async fn claim(
    client: &Client,
    keys: &Keys,
    owner: &str,
    lease: Duration,
    max_attempts: u64,
) -> crate::Result<Claim> {
    let op = ClaimNext {
        keys,
        owner,
        lease,
        max_attempts,
        dead_cap: 100,
    };
    client.backend().run(&op).await
}

async fn counts(client: &Client, keys: &Keys) -> crate::Result<Counts> {
    client.backend().exec(&Count { keys }).await
}

fn job(id: &str, attempts: u64) -> Claim {
    Claim::Job(Claimed {
        id: id.to_owned(),
        payload: id.to_owned().into(),
        attempts,
    })
}

fn leased<'a>(keys: &'a Keys, id: &'a str, owner: &'a str) -> Leased<'a> {
    Leased { keys, id, owner }
}

fn fail<'a>(job: Leased<'a>, max_attempts: u64) -> Fail<'a> {
    Fail {
        job,
        error: "boom",
        max_attempts,
        backoff: Duration::from_millis(40),
        dead_cap: 100,
    }
}

const MINUTE: Duration = Duration::from_secs(60);

async fn push_once(client: &Client) -> CheckResult {
    let keys = keys(client);
    ensure!(push(client, &keys, "a", Duration::ZERO).await?, "pushed");
    ensure!(
        !push(client, &keys, "a", Duration::ZERO).await?,
        "the same id again"
    );
    ensure!(push(client, &keys, "b", MINUTE).await?, "delayed");
    let expected = Counts {
        ready: 1,
        delayed: 1,
        running: 0,
    };
    ensure_eq!(counts(client, &keys).await?, expected, "counts");
    Ok(())
}

async fn claim_in_order(client: &Client) -> CheckResult {
    let keys = keys(client);
    ensure_eq!(
        claim(client, &keys, "w", MINUTE, 3).await?,
        Claim::Empty(None),
        "an empty queue"
    );
    push(client, &keys, "a", Duration::ZERO).await?;
    push(client, &keys, "b", Duration::ZERO).await?;
    push(client, &keys, "c", Duration::from_millis(80)).await?;
    ensure_eq!(
        claim(client, &keys, "w", MINUTE, 3).await?,
        job("a", 1),
        "first"
    );
    ensure_eq!(
        claim(client, &keys, "w", MINUTE, 3).await?,
        job("b", 1),
        "second"
    );
    match claim(client, &keys, "w", MINUTE, 3).await? {
        Claim::Empty(Some(next)) => {
            ensure!(next <= Duration::from_millis(80), "next due in {next:?}")
        }
        other => ensure!(false, "the delayed job is not due: {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(120)).await;
    ensure_eq!(
        claim(client, &keys, "w", MINUTE, 3).await?,
        job("c", 1),
        "due"
    );
    ensure_eq!(counts(client, &keys).await?.running, 3, "three leases");
    Ok(())
}

async fn claim_takes_back_expired_leases(client: &Client) -> CheckResult {
    let keys = keys(client);
    push(client, &keys, "a", Duration::ZERO).await?;
    push(client, &keys, "b", Duration::ZERO).await?;
    let lease = Duration::from_millis(50);
    claim(client, &keys, "dead", lease, 3).await?;
    claim(client, &keys, "dead", lease, 3).await?;
    tokio::time::sleep(Duration::from_millis(80)).await;
    // Both back, `a` first; then `b`'s second lease runs out at its last attempt.
    ensure_eq!(
        claim(client, &keys, "live", MINUTE, 2).await?,
        job("a", 2),
        "a again"
    );
    ensure_eq!(
        claim(client, &keys, "live", lease, 2).await?,
        job("b", 2),
        "b again"
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    let after = claim(client, &keys, "live", MINUTE, 2).await?;
    ensure!(
        matches!(after, Claim::Empty(Some(_))),
        "b dead, a leased: {after:?}"
    );
    let dead = client
        .backend()
        .exec(&DeadJobs {
            keys: &keys,
            count: 10,
        })
        .await?;
    ensure_eq!(dead.len(), 1, "one dead");
    let record: serde_json::Value =
        serde_json::from_slice(&dead[0]).map_err(|e| crate::Error::Config(e.to_string()))?;
    ensure_eq!(record["id"].as_str(), Some("b"), "the dead job");
    ensure_eq!(record["error"].as_str(), Some(STOPPED), "why");
    ensure_eq!(record["attempts"].as_u64(), Some(2), "attempts");
    ensure_eq!(counts(client, &keys).await?.running, 1, "a still leased");
    Ok(())
}

async fn complete_by_owner(client: &Client) -> CheckResult {
    let keys = keys(client);
    push(client, &keys, "a", Duration::ZERO).await?;
    claim(client, &keys, "w", MINUTE, 3).await?;
    ensure!(
        !client
            .backend()
            .run(&Complete(leased(&keys, "a", "other")))
            .await?,
        "not the owner"
    );
    ensure!(
        client
            .backend()
            .run(&Complete(leased(&keys, "a", "w")))
            .await?,
        "completed"
    );
    ensure_eq!(counts(client, &keys).await?, Counts::default(), "gone");
    ensure!(
        !client
            .backend()
            .run(&Complete(leased(&keys, "a", "w")))
            .await?,
        "twice"
    );
    ensure!(
        push(client, &keys, "a", Duration::ZERO).await?,
        "the id is free again"
    );
    Ok(())
}

async fn fail_retries_then_buries(client: &Client) -> CheckResult {
    let keys = keys(client);
    push(client, &keys, "a", Duration::ZERO).await?;
    claim(client, &keys, "w", MINUTE, 2).await?;
    ensure_eq!(
        client
            .backend()
            .run(&fail(leased(&keys, "a", "other"), 2))
            .await?,
        Failed::Lost,
        "not the owner"
    );
    ensure_eq!(
        client
            .backend()
            .run(&fail(leased(&keys, "a", "w"), 2))
            .await?,
        Failed::Retry,
        "first failure"
    );
    let waiting = Counts {
        ready: 0,
        delayed: 1,
        running: 0,
    };
    ensure_eq!(
        counts(client, &keys).await?,
        waiting,
        "waiting for its retry"
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    ensure_eq!(
        claim(client, &keys, "w", MINUTE, 2).await?,
        job("a", 2),
        "retried"
    );
    ensure_eq!(
        client
            .backend()
            .run(&fail(leased(&keys, "a", "w"), 2))
            .await?,
        Failed::Buried,
        "last attempt"
    );
    ensure_eq!(counts(client, &keys).await?, Counts::default(), "gone");
    let dead = client
        .backend()
        .exec(&DeadJobs {
            keys: &keys,
            count: 10,
        })
        .await?;
    let record: serde_json::Value =
        serde_json::from_slice(&dead[0]).map_err(|e| crate::Error::Config(e.to_string()))?;
    ensure_eq!(record["error"].as_str(), Some("boom"), "the last error");
    ensure_eq!(record["d"].as_str(), Some("a"), "the payload");
    Ok(())
}

async fn extend_by_owner(client: &Client) -> CheckResult {
    let keys = keys(client);
    push(client, &keys, "a", Duration::ZERO).await?;
    claim(client, &keys, "w", Duration::from_millis(60), 3).await?;
    let extend = |owner| Extend {
        job: leased(&keys, "a", owner),
        lease: MINUTE,
    };
    ensure!(
        !client.backend().run(&extend("other")).await?,
        "not the owner"
    );
    ensure!(client.backend().run(&extend("w")).await?, "renewed");
    tokio::time::sleep(Duration::from_millis(90)).await;
    match claim(client, &keys, "thief", MINUTE, 3).await? {
        Claim::Empty(_) => {}
        other => ensure!(false, "the renewed lease was taken: {other:?}"),
    }
    Ok(())
}

async fn wait_for_a_push(client: &Client) -> CheckResult {
    let keys = keys(client);
    let mut blocking = Blocking::new(client.inner().backend.clone());
    let short = Wait {
        keys: &keys,
        block: Duration::from_millis(50),
    };
    ensure!(!blocking.exec(&short).await?, "no token");
    push(client, &keys, "a", Duration::ZERO).await?;
    ensure!(blocking.exec(&short).await?, "the push's token");
    ensure!(!blocking.exec(&short).await?, "taken");
    let long = Wait {
        keys: &keys,
        block: Duration::from_millis(900),
    };
    let later = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        push(client, &keys, "b", Duration::ZERO).await
    };
    let (woken, pushed) = tokio::join!(blocking.exec(&long), later);
    pushed?;
    ensure!(woken?, "woken by the push");
    Ok(())
}

async fn count_by_state(client: &Client) -> CheckResult {
    let keys = keys(client);
    ensure_eq!(counts(client, &keys).await?, Counts::default(), "missing");
    for id in ["a", "b", "c"] {
        push(client, &keys, id, Duration::ZERO).await?;
    }
    push(client, &keys, "d", MINUTE).await?;
    claim(client, &keys, "w", MINUTE, 3).await?;
    let expected = Counts {
        ready: 2,
        delayed: 1,
        running: 1,
    };
    ensure_eq!(counts(client, &keys).await?, expected, "by state");
    Ok(())
}

async fn dead_jobs_in_order(client: &Client) -> CheckResult {
    let keys = keys(client);
    for id in ["a", "b", "c"] {
        push(client, &keys, id, Duration::ZERO).await?;
        claim(client, &keys, "w", MINUTE, 1).await?;
        client
            .backend()
            .run(&fail(leased(&keys, id, "w"), 1))
            .await?;
    }
    let dead = client
        .backend()
        .exec(&DeadJobs {
            keys: &keys,
            count: 2,
        })
        .await?;
    let ids: Vec<Option<String>> = dead
        .iter()
        .map(|record| {
            serde_json::from_slice::<serde_json::Value>(record)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_owned))
        })
        .collect();
    ensure_eq!(
        ids,
        vec![Some("a".to_owned()), Some("b".to_owned())],
        "the oldest two"
    );
    Ok(())
}
