//! Conformance checks of the lock's atomic operations (`ops.rs`): `Acquire` takes the lock
//! for one owner and issues strictly increasing fencing tokens, `Extend` and `Release` act
//! for the owner only; with the exact answers and the TTLs they leave.

use std::time::Duration;

use super::ops::Release;
use super::{Attempt, LockKeys, extend, try_acquire};
use crate::backend::Backend;
use crate::client::Client;
use crate::error::Result;
use crate::test_util::Check;
use crate::test_util::conformance::{CheckResult, Failure, check, ensure, ensure_eq, scratch_key};

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!(
            "lock/acquire: one owner takes the lock for its TTL; others learn the lease left",
            acquire_is_exclusive
        ),
        check!(
            "lock/acquire: fencing tokens increase strictly, even when the fencing key is gone",
            fencing_tokens_increase_strictly
        ),
        check!(
            "lock/acquire: an expired lock is taken by the next caller",
            an_expired_lock_is_taken_again
        ),
        check!(
            "lock/extend: only the owner extends the lease, to the new TTL",
            extend_is_for_the_owner_only
        ),
        check!(
            "lock/extend: an expired lease is not extended",
            an_expired_lease_is_not_extended
        ),
        check!(
            "lock/release: only the owner's token releases the lock",
            release_is_for_the_owner_only
        ),
        check!(
            "lock/acquire: a refused caller marks the lock as awaited, for its own lease; \
             lock/release keeps the mark and its TTL",
            waiters_mark_the_lock
        ),
    ]
}

fn keys(client: &Client) -> LockKeys {
    LockKeys::new(&scratch_key(client))
}

/// The fencing token of a granted attempt, or why there is none.
fn granted(attempt: Attempt, what: &str) -> Result<u64, Failure> {
    match attempt {
        Attempt::Acquired { fencing_token } => Ok(fencing_token),
        Attempt::Held { remaining, .. } => Err(Failure(format!(
            "{what}: got Held {{ remaining: {remaining:?} }}, expected Acquired"
        ))),
    }
}

/// The remaining lease of a refused attempt, or why it was granted (or left no waiters' mark,
/// which a healthy backend always writes).
fn refused(attempt: Attempt, what: &str) -> Result<Option<Duration>, Failure> {
    match attempt {
        Attempt::Held {
            remaining,
            marked: true,
        } => Ok(remaining),
        Attempt::Held {
            remaining,
            marked: false,
        } => Err(Failure(format!(
            "{what}: refused (lease left {remaining:?}) without the waiters' mark"
        ))),
        Attempt::Acquired { fencing_token } => Err(Failure(format!(
            "{what}: got Acquired {{ fencing_token: {fencing_token} }}, expected Held"
        ))),
    }
}

async fn release(b: &Backend, keys: &LockKeys, token: &str) -> Result<bool> {
    b.run(&Release {
        mutex: &keys.mutex,
        token,
        waiters: Some(&keys.waiters),
    })
    .await
}

async fn acquire_is_exclusive(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), keys(client));
    let ttl = Duration::from_secs(10);
    let nearly = |left: Option<Duration>| left.is_some_and(|t| t > ttl / 10 * 9 && t <= ttl);
    let token = granted(try_acquire(b, &k, "a", ttl).await?, "the first caller")?;
    ensure!(token > 0, "the first fencing token is 0");
    ensure_eq!(
        b.get(&k.mutex).await?.as_deref(),
        Some(&b"a"[..]),
        "the lock holds its owner's token"
    );
    let left = b.pttl(&k.mutex).await?;
    ensure!(
        nearly(left),
        "the lock's TTL after a 10 s lease is {left:?}"
    );
    let left = b.pttl(&k.fence).await?;
    ensure!(
        nearly(left),
        "the fencing key lives as long as the lease (10 s); its TTL is {left:?}"
    );
    let left = refused(try_acquire(b, &k, "b", ttl).await?, "a second caller")?;
    ensure!(
        nearly(left),
        "a second caller learns the holder's lease left: {left:?} of 10 s"
    );
    refused(
        try_acquire(b, &k, "a", ttl).await?,
        "the owner again (NX: not even the owner takes it twice)",
    )?;
    Ok(())
}

async fn waiters_mark_the_lock(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), keys(client));
    granted(
        try_acquire(b, &k, "a", Duration::from_secs(10)).await?,
        "a free lock",
    )?;
    ensure_eq!(
        b.pttl(&k.waiters).await?,
        None,
        "the waiters' mark before anyone waited"
    );
    let waiter_lease = Duration::from_secs(5);
    refused(try_acquire(b, &k, "b", waiter_lease).await?, "a waiter")?;
    let marked = b.pttl(&k.waiters).await?;
    ensure!(
        marked.is_some_and(|t| t > waiter_lease / 10 * 9 && t <= waiter_lease),
        "the mark lives as long as the waiter's lease (5 s); its TTL is {marked:?}"
    );
    ensure!(release(b, &k, "a").await?, "the owner's release");
    let after = b.pttl(&k.waiters).await?;
    ensure!(
        after.is_some_and(|t| Some(t) <= marked),
        "the release rewrites the mark in place (KEEPTTL): TTL {after:?} after {marked:?}"
    );
    ensure_eq!(
        b.get(&k.waiters).await?.as_deref(),
        Some(&b"1"[..]),
        "the mark's value"
    );
    Ok(())
}

async fn fencing_tokens_increase_strictly(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), keys(client));
    let ttl = Duration::from_secs(10);
    let mut last = 0;
    for round in 0..3 {
        let token = granted(try_acquire(b, &k, "a", ttl).await?, "a free lock")?;
        ensure!(
            token > last,
            "acquisition {round}'s fencing token {token} after {last}"
        );
        last = token;
        ensure!(release(b, &k, "a").await?, "the owner's release");
    }
    // The server forgot the last token (expiry, eviction, a restart): the clock carries on.
    b.del(&k.fence).await?;
    let token = granted(try_acquire(b, &k, "a", ttl).await?, "a free lock")?;
    ensure!(
        token > last,
        "the fencing token {token} after the fencing key was deleted is not above {last}"
    );
    release(b, &k, "a").await?;
    Ok(())
}

async fn an_expired_lock_is_taken_again(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), keys(client));
    let short = Duration::from_millis(150);
    let first = granted(try_acquire(b, &k, "a", short).await?, "the first caller")?;
    tokio::time::sleep(Duration::from_millis(250)).await;
    ensure_eq!(b.pttl(&k.mutex).await?, None, "the lock's TTL once expired");
    let next = granted(
        try_acquire(b, &k, "b", short).await?,
        "another caller once the 150 ms lease has passed",
    )?;
    ensure!(
        next > first,
        "the next holder's fencing token {next} is not above {first}"
    );
    Ok(())
}

async fn extend_is_for_the_owner_only(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), keys(client));
    let (ttl, longer) = (Duration::from_secs(1), Duration::from_secs(10));
    granted(try_acquire(b, &k, "a", ttl).await?, "the first caller")?;
    ensure!(
        !extend(b, &k.mutex, "b", longer).await?,
        "another token's extension reports success"
    );
    let left = b.pttl(&k.mutex).await?;
    ensure!(
        left.is_some_and(|t| t <= ttl),
        "the lease after another token's extension is {left:?}, beyond the 1 s granted"
    );
    ensure!(
        extend(b, &k.mutex, "a", longer).await?,
        "the owner's extension reports failure"
    );
    let left = b.pttl(&k.mutex).await?;
    ensure!(
        left.is_some_and(|t| t > Duration::from_secs(9) && t <= longer),
        "the lease after the owner extended it to 10 s is {left:?}"
    );
    ensure_eq!(
        b.get(&k.mutex).await?.as_deref(),
        Some(&b"a"[..]),
        "the lock's owner after an extension"
    );
    release(b, &k, "a").await?;
    ensure!(
        !extend(b, &k.mutex, "a", longer).await?,
        "extending a released lock reports success"
    );
    ensure_eq!(
        b.get(&k.mutex).await?,
        None,
        "the lock after extending a released one"
    );
    Ok(())
}

async fn an_expired_lease_is_not_extended(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), keys(client));
    granted(
        try_acquire(b, &k, "a", Duration::from_millis(150)).await?,
        "the first caller",
    )?;
    tokio::time::sleep(Duration::from_millis(250)).await;
    ensure!(
        !extend(b, &k.mutex, "a", Duration::from_secs(10)).await?,
        "extending a lease that ran out reports success"
    );
    ensure_eq!(
        b.pttl(&k.mutex).await?,
        None,
        "the lock after extending an expired lease"
    );
    Ok(())
}

async fn release_is_for_the_owner_only(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), keys(client));
    let ttl = Duration::from_secs(10);
    granted(try_acquire(b, &k, "owner", ttl).await?, "the first caller")?;
    ensure!(
        !release(b, &k, "intruder").await?,
        "another token's release reports a release"
    );
    ensure_eq!(
        b.get(&k.mutex).await?.as_deref(),
        Some(&b"owner"[..]),
        "the lock after another token's release"
    );
    ensure!(
        release(b, &k, "owner").await?,
        "the owner's release reports none"
    );
    ensure_eq!(b.get(&k.mutex).await?, None, "the lock after its release");
    ensure!(
        !release(b, &k, "owner").await?,
        "a second release by the owner reports a release"
    );
    granted(
        try_acquire(b, &k, "next", ttl).await?,
        "a caller after the release",
    )?;
    Ok(())
}
