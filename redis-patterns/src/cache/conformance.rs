//! Conformance checks of the cache's atomic operations (`ops.rs`): `GetOrLock` reads a value
//! or takes the stampede lock exclusively, `SetAndUnlock` stores and releases only its own
//! lock; with the exact answers and the TTLs they leave.

use std::time::Duration;

use bytes::Bytes;

use super::ops::{GetOrLock, Probe, SetAndUnlock};
use super::tags::{InvalidateTag, TagVersion};
use crate::backend::Backend;
use crate::client::Client;
use crate::error::Result;
use crate::lock::ops::Release;
use crate::test_util::Check;
use crate::test_util::conformance::{CheckResult, check, ensure, ensure_eq, scratch_key};

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!(
            "cache/get_or_lock: without a value, one caller takes the lock, for lock_ttl",
            get_or_lock_takes_the_lock_exclusively
        ),
        check!(
            "cache/get_or_lock: a stored value is read, whoever holds the lock",
            get_or_lock_reads_a_stored_value
        ),
        check!(
            "cache/get_or_lock: with the caller's clock, a stale envelope is returned with the lock's outcome",
            get_or_lock_judges_freshness_by_the_envelope
        ),
        check!(
            "cache/get_or_lock: the lock expires after lock_ttl",
            get_or_lock_lock_expires
        ),
        check!(
            "cache/set_and_unlock: stores the value with its TTL and releases the caller's lock",
            set_and_unlock_stores_and_releases
        ),
        check!(
            "cache/set_and_unlock: stores, but keeps another owner's lock",
            set_and_unlock_keeps_another_owners_lock
        ),
        check!(
            "lock/release: a stampede lock is released by its owner only",
            release_frees_a_stampede_lock_for_its_owner_only
        ),
        check!(
            "cache/tag_version: a missing tag is created for twice the entry TTL, an existing one \
             read, and extended only when less than the entry TTL is left",
            tag_version_creates_reads_and_extends
        ),
        check!(
            "cache/tag_invalidate: an existing tag gets the new version and keeps its TTL; a \
             missing one stays missing",
            tag_invalidate_replaces_existing_versions_only
        ),
    ]
}

/// A value key and its stampede lock, as `#[cached]` names them.
struct Keys {
    value: String,
    lock: String,
}

impl Keys {
    fn new(client: &Client) -> Self {
        let value = scratch_key(client);
        let lock = format!("{value}:lock");
        Keys { value, lock }
    }

    async fn get_or_lock(&self, b: &Backend, token: &str, lock_ttl: Duration) -> Result<Probe> {
        b.run(&GetOrLock {
            key: &self.value,
            lock_key: &self.lock,
            token,
            lock_ttl,
            now_ms: 0,
        })
        .await
    }

    async fn set_and_unlock(
        &self,
        b: &Backend,
        value: &'static [u8],
        ttl: Duration,
        token: &str,
    ) -> Result<bool> {
        b.run(&SetAndUnlock {
            key: &self.value,
            value: Bytes::from_static(value),
            ttl,
            lock_key: &self.lock,
            token,
        })
        .await
    }
}

async fn get_or_lock_takes_the_lock_exclusively(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), Keys::new(client));
    let ttl = Duration::from_secs(10);
    ensure_eq!(
        k.get_or_lock(b, "a", ttl).await?,
        Probe::Acquired(None),
        "the first caller"
    );
    ensure_eq!(
        b.get(&k.lock).await?.as_deref(),
        Some(&b"a"[..]),
        "the lock holds its owner's token"
    );
    let left = b.pttl(&k.lock).await?;
    ensure!(
        left.is_some_and(|t| t > Duration::from_secs(9) && t <= ttl),
        "the lock's TTL right after a lock_ttl of 10 s is {left:?}"
    );
    ensure_eq!(
        k.get_or_lock(b, "b", ttl).await?,
        Probe::Held(None),
        "a second caller"
    );
    ensure_eq!(
        k.get_or_lock(b, "a", ttl).await?,
        Probe::Held(None),
        "the owner again (NX: not even the owner takes it twice)"
    );
    ensure_eq!(b.get(&k.value).await?, None, "the value key");
    Ok(())
}

async fn get_or_lock_reads_a_stored_value(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), Keys::new(client));
    let ttl = Duration::from_secs(10);
    let stored = b"\x00value\xff".to_vec();
    b.set(&k.value, stored.clone(), ttl).await?;
    ensure_eq!(
        k.get_or_lock(b, "a", ttl).await?,
        Probe::Value(Bytes::from(stored.clone())),
        "with a value stored"
    );
    ensure_eq!(
        b.get(&k.lock).await?,
        None,
        "the lock after reading a value"
    );
    b.set(&k.lock, b"other".to_vec(), ttl).await?;
    ensure_eq!(
        k.get_or_lock(b, "a", ttl).await?,
        Probe::Value(Bytes::from(stored)),
        "with a value stored and the lock held by another"
    );
    Ok(())
}

/// An envelope whose freshness ends at `expires_ms` (by the header's bytes 8..16).
fn envelope_expiring(expires_ms: u64) -> Bytes {
    let mut bytes = vec![0xFE, 2, 1, 0, 0, 0, 0, 0];
    bytes.extend_from_slice(&expires_ms.to_le_bytes());
    bytes.extend_from_slice(&[0; 12]);
    bytes.extend_from_slice(b"1");
    Bytes::from(bytes)
}

async fn get_or_lock_judges_freshness_by_the_envelope(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), Keys::new(client));
    let ttl = Duration::from_secs(10);
    let now = 1_700_000_000_000u64;
    let probe = |token: &'static str, now_ms| {
        let k = &k;
        async move {
            b.run(&GetOrLock {
                key: &k.value,
                lock_key: &k.lock,
                token,
                lock_ttl: ttl,
                now_ms,
            })
            .await
        }
    };
    let fresh = envelope_expiring(now + 1);
    b.set(&k.value, fresh.to_vec(), ttl).await?;
    ensure_eq!(
        probe("a", now).await?,
        Probe::Value(fresh.clone()),
        "an envelope fresh for 1 more ms"
    );
    ensure_eq!(b.get(&k.lock).await?, None, "the lock after a fresh read");
    let stale = envelope_expiring(now);
    b.set(&k.value, stale.to_vec(), ttl).await?;
    ensure_eq!(
        probe("a", 0).await?,
        Probe::Value(stale.clone()),
        "a stale envelope without the caller's clock"
    );
    ensure_eq!(
        probe("a", now).await?,
        Probe::Acquired(Some(stale.clone())),
        "a stale envelope, lock free"
    );
    ensure_eq!(
        probe("b", now).await?,
        Probe::Held(Some(stale.clone())),
        "a stale envelope, lock held"
    );
    let foreign = Bytes::from_static(b"plain text, no envelope");
    b.set(&k.value, foreign.to_vec(), ttl).await?;
    ensure_eq!(
        probe("c", now).await?,
        Probe::Value(foreign),
        "a value that is no envelope (served, so that the caller replaces it)"
    );
    Ok(())
}

async fn get_or_lock_lock_expires(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), Keys::new(client));
    let short = Duration::from_millis(150);
    ensure_eq!(
        k.get_or_lock(b, "a", short).await?,
        Probe::Acquired(None),
        "the first caller"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    ensure_eq!(
        k.get_or_lock(b, "b", short).await?,
        Probe::Acquired(None),
        "another caller once the lock_ttl of 150 ms has passed"
    );
    Ok(())
}

async fn set_and_unlock_stores_and_releases(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), Keys::new(client));
    let lock_ttl = Duration::from_secs(10);
    k.get_or_lock(b, "owner", lock_ttl).await?;
    let ttl = Duration::from_millis(500);
    ensure!(
        k.set_and_unlock(b, b"v", ttl, "owner").await?,
        "the owner's set_and_unlock reports that the lock was not released"
    );
    ensure_eq!(b.get(&k.lock).await?, None, "the lock after its release");
    ensure_eq!(
        b.get(&k.value).await?.as_deref(),
        Some(&b"v"[..]),
        "the stored value"
    );
    let left = b.pttl(&k.value).await?;
    ensure!(
        left.is_some_and(|t| t > Duration::ZERO && t <= ttl),
        "the value's TTL after storing it for 500 ms is {left:?}"
    );
    ensure_eq!(
        k.get_or_lock(b, "next", lock_ttl).await?,
        Probe::Value(Bytes::from_static(b"v")),
        "the next caller"
    );
    Ok(())
}

async fn set_and_unlock_keeps_another_owners_lock(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), Keys::new(client));
    let ttl = Duration::from_secs(10);
    // Our lease expired and somebody else took the lock: we store, but keep their lock.
    k.get_or_lock(b, "new-owner", ttl).await?;
    ensure!(
        !k.set_and_unlock(b, b"v", ttl, "old-owner").await?,
        "set_and_unlock with a token that does not hold the lock reports a release"
    );
    ensure_eq!(
        b.get(&k.value).await?.as_deref(),
        Some(&b"v"[..]),
        "the value stored without the lock"
    );
    ensure_eq!(
        b.get(&k.lock).await?.as_deref(),
        Some(&b"new-owner"[..]),
        "the other owner's lock"
    );
    ensure!(
        b.pttl(&k.lock).await?.is_some(),
        "the other owner's lock lost its TTL"
    );
    // No lock at all: stored all the same.
    b.del(&k.lock).await?;
    ensure!(
        !k.set_and_unlock(b, b"w", ttl, "old-owner").await?,
        "set_and_unlock without a lock reports a release"
    );
    ensure_eq!(
        b.get(&k.value).await?.as_deref(),
        Some(&b"w"[..]),
        "the value stored with no lock"
    );
    Ok(())
}

async fn release_frees_a_stampede_lock_for_its_owner_only(client: &Client) -> CheckResult {
    let (b, k) = (client.backend(), Keys::new(client));
    let ttl = Duration::from_secs(10);
    let release = |token| Release {
        mutex: &k.lock,
        token,
        waiters: None,
    };
    k.get_or_lock(b, "owner", ttl).await?;
    ensure!(
        !b.run(&release("intruder")).await?,
        "another token's release reports a release"
    );
    ensure_eq!(
        k.get_or_lock(b, "x", ttl).await?,
        Probe::Held(None),
        "a caller after another token's release"
    );
    ensure!(
        b.run(&release("owner")).await?,
        "the owner's release reports none"
    );
    ensure!(
        !b.run(&release("owner")).await?,
        "a second release by the owner reports a release"
    );
    ensure_eq!(
        k.get_or_lock(b, "x", ttl).await?,
        Probe::Acquired(None),
        "a caller after the owner's release"
    );
    Ok(())
}

async fn tag_version_creates_reads_and_extends(client: &Client) -> CheckResult {
    let (b, key) = (client.backend(), scratch_key(client));
    let entry_ttl = Duration::from_secs(10);
    let version = |candidate: &str| TagVersion {
        key: &key,
        candidate: candidate.to_owned(),
        entry_ttl,
    };
    ensure_eq!(
        b.run(&version("v1")).await?,
        Bytes::from_static(b"v1"),
        "a missing tag's version"
    );
    let left = b.pttl(&key).await?;
    ensure!(
        left.is_some_and(|t| t > Duration::from_secs(19) && t <= 2 * entry_ttl),
        "a new tag's TTL for an entry TTL of 10 s is {left:?}"
    );
    ensure_eq!(
        b.run(&version("v2")).await?,
        Bytes::from_static(b"v1"),
        "an existing tag's version"
    );
    // 20 s left against an entry TTL of 10 s: not extended.
    b.set(&key, b"v1".to_vec(), Duration::from_secs(20)).await?;
    b.run(&version("v3")).await?;
    let left = b.pttl(&key).await?;
    ensure!(
        left.is_some_and(|t| t <= Duration::from_secs(20) && t > Duration::from_secs(19)),
        "a tag with more than the entry TTL left was given {left:?}"
    );
    // 5 s left: extended to 20 s.
    b.set(&key, b"v1".to_vec(), Duration::from_secs(5)).await?;
    ensure_eq!(
        b.run(&version("v4")).await?,
        Bytes::from_static(b"v1"),
        "the version of a tag about to be extended"
    );
    let left = b.pttl(&key).await?;
    ensure!(
        left.is_some_and(|t| t > Duration::from_secs(19)),
        "a tag with 5 s left for an entry TTL of 10 s was given {left:?}"
    );
    Ok(())
}

async fn tag_invalidate_replaces_existing_versions_only(client: &Client) -> CheckResult {
    let (b, key) = (client.backend(), scratch_key(client));
    let invalidate = |version: &str| InvalidateTag {
        key: &key,
        version: version.to_owned(),
    };
    ensure!(
        !b.run(&invalidate("v2")).await?,
        "invalidating a missing tag reports that it existed"
    );
    ensure_eq!(
        b.get(&key).await?,
        None,
        "a missing tag after its invalidation"
    );
    b.set(&key, b"v1".to_vec(), Duration::from_secs(30)).await?;
    ensure!(
        b.run(&invalidate("v2")).await?,
        "invalidating an existing tag reports that it did not exist"
    );
    ensure_eq!(
        b.get(&key).await?.as_deref(),
        Some(&b"v2"[..]),
        "the tag's version after its invalidation"
    );
    let left = b.pttl(&key).await?;
    ensure!(
        left.is_some_and(|t| t > Duration::from_secs(29) && t <= Duration::from_secs(30)),
        "the tag's TTL after its invalidation is {left:?} (was 30 s)"
    );
    Ok(())
}
