//! Cache tags: `#[cached(tags = ["catalog", "brand:<brand>"])]` and [`invalidate_tag`].
//!
//! A tag is a key of its own, `namespace:^tag:{brand:#acme}`, holding a random *version*. An
//! entry records a stamp of its tags' versions (in its envelope), taken *before* its function
//! ran; a read fetches the entry and its tags' versions together and takes the entry only when
//! the stamp matches. Invalidating a tag gives it a new version: one write, whatever the number
//! of entries, which live in any slot of a cluster; they become misses and are overwritten.
//! Nothing is scanned and no set of members is kept.
//!
//! * **Reads.** A tagged read sends `GET` of the entry and of each tag at once
//!   ([`Backend::get_many`](crate::backend::Backend::get_many): pipelined on one server, in
//!   parallel to the tags' nodes on a cluster): one round trip, one more command per tag.
//! * **Writes.** Before the function runs, each tag's version is read, created if missing
//!   (`tag_version.lua`), and kept alive for the entry: a tag's TTL is at least the longest TTL
//!   of an entry carrying it, so an entry never outlives its tag. A tag evicted under memory
//!   pressure turns its entries into misses, never into false hits: a missing tag matches no
//!   stamp.
//! * **Races.** The versions are read before the function runs, so an invalidation during the
//!   computation leaves the new entry stamped with the old version: a miss on the next read.

use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use redis::Script;

use std::sync::atomic::Ordering;

use super::call::Call;
use crate::backend::{AtomicOp, ScriptArgs, Txn, millis};
use crate::client::Client;
use crate::envelope;
use crate::error::Result;

static TAG_VERSION: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/cache/tag_version.lua")));
static TAG_INVALIDATE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/cache/tag_invalidate.lua")));

/// A new random tag version.
fn new_version() -> String {
    crate::util::new_token()
}

/// The stamp of a set of tag versions, in the order the function names its tags: FNV-1a 64 of
/// each version and a separator, never 0 (0 is "no tags").
pub(crate) fn stamp<V: AsRef<[u8]>>(versions: &[V]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for version in versions {
        for &byte in version.as_ref().iter().chain(&[0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash | 1
}

/// The stamp of tag versions read alongside an entry; `None` when a tag has no version (never
/// written, expired or evicted): then no stored entry carrying it is valid.
fn current(versions: Vec<Option<Bytes>>) -> Option<u64> {
    let versions: Option<Vec<Bytes>> = versions.into_iter().collect();
    versions.map(|v| stamp(&v))
}

/// The stamp to write an entry with: each tag's version, created if missing, with the tag kept
/// alive for at least `entry_ttl`.
pub(crate) async fn for_write(
    client: &Client,
    tags: &[String],
    entry_ttl: Duration,
) -> Result<u64> {
    let backend = &client.inner().backend;
    let ops: Vec<TagVersion<'_>> = tags
        .iter()
        .map(|tag| TagVersion {
            key: tag,
            candidate: new_version(),
            entry_ttl,
        })
        .collect();
    let versions = futures_util::future::try_join_all(ops.iter().map(|op| backend.run(op))).await?;
    Ok(stamp(&versions))
}

/// Invalidates every entry tagged `tag` on `client`: see [`invalidate_tag`].
pub(crate) async fn invalidate(client: &Client, tag: &str) -> Result<bool> {
    let key = crate::key::tag_key(client.namespace(), tag);
    let invalidated = client
        .inner()
        .backend
        .run(&InvalidateTag {
            key: &key,
            version: new_version(),
        })
        .await;
    client.near_changed(&key);
    invalidated
}

/// Invalidates every entry of the default client tagged `tag` (a `tags = […]` template with its
/// values, such as `"brand:acme"` for `"brand:<brand>"` with `brand = "acme"`): one write,
/// however many entries carry the tag, in whichever slots of a cluster they live. `true` when
/// the tag existed (some entry may carry it); `false` when no live entry does.
///
/// Other processes see it on their next read; their near tiers drop tagged values when the
/// server's invalidation reaches them. Use [`Client::invalidate_tag`] for another client.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis_patterns::Error> {
/// use redis_patterns::cached;
///
/// #[cached(key = "product:<id>", ttl = "5m", tags = ["catalog", "brand:<brand>"])]
/// async fn product(id: u64, brand: &str) -> String {
///     format!("product {id} of {brand}")
/// }
///
/// product(1, "acme").await;
/// assert!(redis_patterns::cache::invalidate_tag("brand:acme").await?);
/// assert!(!redis_patterns::cache::invalidate_tag("brand:nobody").await?);
/// # Ok(()) }
/// ```
pub async fn invalidate_tag(tag: &str) -> Result<bool> {
    Client::default_client().invalidate_tag(tag).await
}

/// The tag paths of a cached call.
impl<H> Call<'_, H> {
    /// The entry, with its tags' current versions read at the same time (their stamp is kept
    /// for [`Call::expected`]).
    pub(super) async fn read(&self) -> Result<Option<Bytes>> {
        if self.tags.is_empty() {
            return self.backend().get(self.key).await;
        }
        let keys: Vec<&str> = std::iter::once(self.key)
            .chain(self.tags.iter().map(String::as_str))
            .collect();
        let mut values = self.backend().get_many(&keys).await?.into_iter();
        let entry = values.next().flatten();
        let stamp = current(values.collect()).unwrap_or(envelope::UNKNOWN_TAGS);
        self.tag_stamp.store(stamp, Ordering::Relaxed);
        Ok(entry)
    }

    /// The tag stamp to write a new entry with: 0 without tags; `None` when the versions
    /// could not be read or created (logged, counted; the result is then not stored).
    pub(super) async fn write_stamp(&self) -> Option<u64> {
        if self.tags.is_empty() {
            return Some(0);
        }
        match for_write(self.client, self.tags, self.spec.longest_stored_ttl()).await {
            Ok(stamp) => {
                self.tag_stamp.store(stamp, Ordering::Relaxed);
                Some(stamp)
            }
            Err(e) => {
                self.backend_failed("tag versions", &e);
                None
            }
        }
    }
}

/// Reads a tag's version, creating it if missing and extending its TTL when less than the
/// longest entry TTL is left.
pub(crate) struct TagVersion<'a> {
    pub(crate) key: &'a str,
    pub(crate) candidate: String,
    pub(crate) entry_ttl: Duration,
}

impl AtomicOp for TagVersion<'_> {
    type Output = Bytes;
    type Reply = Vec<u8>;

    fn script(&self) -> &'static Script {
        &TAG_VERSION
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        invocation
            .key(self.key)
            .arg(&self.candidate)
            .arg(millis(self.entry_ttl));
    }

    fn answer(&self, reply: Vec<u8>) -> Result<Bytes> {
        Ok(Bytes::from(reply))
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Bytes {
        let ttl = self.entry_ttl.max(Duration::from_millis(1));
        let Some(version) = txn.get(self.key).cloned() else {
            let version = Bytes::copy_from_slice(self.candidate.as_bytes());
            txn.set(self.key, version.clone(), Some(ttl.saturating_mul(2)));
            return version;
        };
        if txn.pttl(self.key).is_some_and(|left| left < ttl) {
            txn.expire(self.key, ttl.saturating_mul(2));
        }
        version
    }
}

/// Gives an existing tag a new version, keeping its TTL; `true` when it existed.
pub(crate) struct InvalidateTag<'a> {
    pub(crate) key: &'a str,
    pub(crate) version: String,
}

impl AtomicOp for InvalidateTag<'_> {
    type Output = bool;
    type Reply = i64;

    fn script(&self) -> &'static Script {
        &TAG_INVALIDATE
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        invocation.key(self.key).arg(&self.version);
    }

    fn answer(&self, reply: i64) -> Result<bool> {
        Ok(reply == 1)
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> bool {
        if txn.get(self.key).is_none() {
            return false;
        }
        let ttl = txn.pttl(self.key);
        txn.set(
            self.key,
            Bytes::copy_from_slice(self.version.as_bytes()),
            ttl,
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_depend_on_every_version_and_their_order_and_are_never_zero() {
        let a = stamp(&["v1", "w1"]);
        assert_ne!(a, 0);
        assert_eq!(a, stamp(&[b"v1".to_vec(), b"w1".to_vec()]));
        assert_ne!(a, stamp(&["v2", "w1"]));
        assert_ne!(a, stamp(&["w1", "v1"]));
        assert_ne!(stamp(&["ab", "c"]), stamp(&["a", "bc"]));
        assert_ne!(stamp::<&str>(&[]), 0);
    }
}
