//! Conformance checks of the lock's atomic operations (`ops.rs`): a first attempt and a
//! waiter's `Acquire` take the lock for one owner, `Fence` issues strictly increasing fencing
//! tokens to the holder only, `Extend` and `Release` act for the owner only; with the exact
//! answers, the values and the TTLs they leave.

use std::time::Duration;

use super::ops::{Fence, Release};
use super::{Attempt, LockKeys, extend, fence_key};
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
            "lock/fence: fencing tokens go to the holder only and increase strictly, even when \
             the fencing key is gone",
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
    LockKeys::new(&scratch_key(client), false)
}

/// A first attempt (`SET NX PX`, then the waiter's script if refused).
async fn try_acquire(b: &Backend, k: &LockKeys, owner: &str, ttl: Duration) -> Result<Attempt> {
    super::try_acquire(b, k, owner, ttl, false).await
}

/// A waiter's attempt (the script only).
async fn try_again(b: &Backend, k: &LockKeys, owner: &str, ttl: Duration) -> Result<Attempt> {
    super::try_acquire(b, k, owner, ttl, true).await
}

/// The fencing token `owner` is issued, if it holds the lock.
async fn fence(b: &Backend, k: &LockKeys, owner: &str, ttl: Duration) -> Result<Option<u64>> {
    b.run(&Fence {
        mutex: &k.mutex,
        fence: &fence_key(&k.mutex),
        token: owner,
        ttl,
    })
    .await
}

/// Why an attempt was not granted.
fn granted(attempt: Attempt, what: &str) -> Result<(), Failure> {
    match attempt {
        Attempt::Acquired(_) => Ok(()),
        Attempt::Held { remaining, .. } => Err(Failure(format!(
            "{what}: got Held {{ remaining: {remaining:?} }}, expected Acquired"
        ))),
    }
}

/// The fencing token `owner` is issued, or why none was.
async fn issued(b: &Backend, k: &LockKeys, owner: &str, what: &str) -> Result<u64, Failure> {
    match fence(b, k, owner, Duration::from_secs(10)).await? {
        Some(token) if token > 0 => Ok(token),
        other => Err(Failure(format!(
            "{what}: the holder asked for its fencing token and got {other:?}"
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
        Attempt::Acquired(_) => Err(Failure(format!("{what}: got Acquired, expected Held"))),
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
    granted(try_acquire(b, &k, "a!", ttl).await?, "the first caller")?;
    ensure_eq!(
        b.get(&k.mutex).await?.as_deref(),
        Some(&b"a!"[..]),
        "the lock holds its owner's token"
    );
    let left = b.pttl(&k.mutex).await?;
    ensure!(
        nearly(left),
        "the lock's TTL after a 10 s lease is {left:?}"
    );
    let left = refused(try_acquire(b, &k, "b!", ttl).await?, "a second caller")?;
    ensure!(
        nearly(left),
        "a second caller learns the holder's lease left: {left:?} of 10 s"
    );
    refused(
        try_acquire(b, &k, "a!", ttl).await?,
        "the owner again (NX: not even the owner takes it twice)",
    )?;
    refused(try_again(b, &k, "a!", ttl).await?, "the owner as a waiter")?;
    Ok(())
}

async fn waiters_mark_the_lock(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), keys(client));
    let ttl = Duration::from_secs(10);
    granted(try_acquire(b, &k, "a!", ttl).await?, "a free lock")?;
    ensure_eq!(
        b.pttl(&k.waiters).await?,
        None,
        "the waiters' mark before anyone waited"
    );
    let waiter_lease = Duration::from_secs(5);
    refused(try_acquire(b, &k, "b!", waiter_lease).await?, "a waiter")?;
    let marked = b.pttl(&k.waiters).await?;
    ensure!(
        marked.is_some_and(|t| t > waiter_lease / 10 * 9 && t <= waiter_lease),
        "the mark lives as long as the waiter's lease (5 s); its TTL is {marked:?}"
    );
    ensure_eq!(
        b.get(&k.mutex).await?.as_deref(),
        Some(&b"a!*"[..]),
        "the holder's value once somebody waited for it"
    );
    let left = b.pttl(&k.mutex).await?;
    ensure!(
        left.is_some_and(|t| t > ttl / 10 * 9 && t <= ttl),
        "the holder keeps its lease when marked as awaited (KEEPTTL): TTL {left:?} of 10 s"
    );
    ensure!(release(b, &k, "a!").await?, "the owner's release");
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
    // A waiter that takes the lock while the mark is there is marked as awaited at once: the
    // others still wait for its release.
    granted(
        try_again(b, &k, "b!", ttl).await?,
        "the waiter, once released",
    )?;
    ensure_eq!(
        b.get(&k.mutex).await?.as_deref(),
        Some(&b"b!*"[..]),
        "a waiter's value while others wait"
    );
    ensure!(release(b, &k, "b!").await?, "the waiter's release");
    ensure_eq!(b.get(&k.mutex).await?, None, "the lock after its release");
    // A holder of an earlier version (its token ends with '+' or a hex digit) compares its
    // value exactly: waiters leave it as it is, and it still extends and releases its lock.
    // Its release does not rewrite this version's mark, so its waiters are told to poll.
    for old in ["0af3", "0af3+"] {
        granted(try_acquire(b, &k, old, ttl).await?, "a free lock")?;
        match try_acquire(b, &k, "c!", ttl).await? {
            Attempt::Held { marked: false, .. } => {}
            _ => {
                return Err(Failure(format!(
                    "a waiter behind {old}: expected Held and told to poll"
                )));
            }
        }
        ensure_eq!(
            b.get(&k.mutex).await?.as_deref(),
            Some(old.as_bytes()),
            "an earlier version's holder after somebody waited"
        );
        ensure!(extend(b, &k.mutex, old, ttl).await?, "its extension");
        ensure!(release(b, &k, old).await?, "its release");
    }
    Ok(())
}

async fn fencing_tokens_increase_strictly(client: &Client) -> CheckResult {
    let (b, name) = (client.backend(), scratch_key(client));
    let (k, fenced) = (LockKeys::new(&name, false), LockKeys::new(&name, true));
    let ttl = Duration::from_secs(10);
    let mut last = 0;
    // Issued with the grant: the same sequence.
    for round in 0..2 {
        let token = match try_acquire(b, &fenced, "a", ttl).await? {
            Attempt::Acquired(Some(token)) => token,
            Attempt::Acquired(None) => {
                return Err(Failure("a fenced grant came without its token".into()));
            }
            Attempt::Held { .. } => return Err(Failure("a free lock was refused".into())),
        };
        ensure!(
            token > last,
            "fenced grant {round}'s fencing token {token} after {last}"
        );
        last = token;
        ensure!(release(b, &k, "a").await?, "the owner's release");
    }
    for round in 0..3 {
        granted(try_acquire(b, &k, "a", ttl).await?, "a free lock")?;
        ensure_eq!(
            fence(b, &k, "b", ttl).await?,
            None,
            "a fencing token for somebody who does not hold the lock"
        );
        let token = issued(b, &k, "a", "the holder").await?;
        ensure!(
            token > last,
            "holding {round}'s fencing token {token} after {last}"
        );
        last = token;
        ensure!(release(b, &k, "a").await?, "the owner's release");
    }
    ensure_eq!(
        fence(b, &k, "a", ttl).await?,
        None,
        "a fencing token after the release"
    );
    granted(try_acquire(b, &k, "a!", ttl).await?, "a free lock")?;
    let left = b.pttl(&fence_key(&k.mutex)).await?;
    ensure!(
        left.is_some_and(|t| t > ttl / 10 * 9 && t <= ttl),
        "the fencing key lives as long as the lease (10 s); its TTL is {left:?}"
    );
    refused(try_acquire(b, &k, "b!", ttl).await?, "a second caller")?;
    // Marked as awaited, the holder is still the holder.
    let token = issued(b, &k, "a!", "the holder, marked as awaited").await?;
    ensure!(token > last, "the fencing token {token} after {last}");
    last = token;
    ensure!(release(b, &k, "a!").await?, "the owner's release");
    // The server forgot the last token (expiry, eviction, a restart): the clock carries on.
    b.del(&fence_key(&k.mutex)).await?;
    granted(try_acquire(b, &k, "a", ttl).await?, "a free lock")?;
    let token = issued(b, &k, "a", "the holder").await?;
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
    granted(try_acquire(b, &k, "a", short).await?, "the first caller")?;
    let first = issued(b, &k, "a", "the first caller").await?;
    tokio::time::sleep(Duration::from_millis(250)).await;
    ensure_eq!(b.pttl(&k.mutex).await?, None, "the lock's TTL once expired");
    ensure_eq!(
        fence(b, &k, "a", short).await?,
        None,
        "a fencing token for a holder whose lease ran out"
    );
    granted(
        try_acquire(b, &k, "b", short).await?,
        "another caller once the 150 ms lease has passed",
    )?;
    let next = issued(b, &k, "b", "the next holder").await?;
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
    // Marked as awaited, the owner still extends, and keeps the mark.
    granted(try_acquire(b, &k, "a!", ttl).await?, "a free lock")?;
    refused(try_acquire(b, &k, "b!", ttl).await?, "a waiter")?;
    ensure!(
        extend(b, &k.mutex, "a!", longer).await?,
        "the extension of a lock marked as awaited reports failure"
    );
    ensure_eq!(
        b.get(&k.mutex).await?.as_deref(),
        Some(&b"a!*"[..]),
        "the lock's value after extending a lock marked as awaited"
    );
    release(b, &k, "a!").await?;
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
    ensure!(
        !release(b, &k, "owne").await?,
        "the release of a token that is a prefix of the owner's reports a release"
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
