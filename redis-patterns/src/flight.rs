//! In-process single-flight: concurrent calls for one key share one backend read and at most
//! one computation.
//!
//! The first caller of a key becomes the *leader*; later callers *follow* and wait for what
//! the leader publishes. The flight stays registered until the leader is done (including the
//! write to the backend), so a caller arriving in between joins it instead of starting over.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::watch;

const SHARDS: usize = 16;

/// What a leader hands its followers.
#[derive(Clone, Debug)]
pub(crate) enum Shared {
    /// The JSON payload of the result.
    Value(Bytes),
    /// The result cannot be shared (e.g. an `Err`): followers run the function themselves.
    NotShareable,
}

type Slot = watch::Sender<Option<Shared>>;

pub(crate) struct Flights {
    shards: [Mutex<HashMap<String, Arc<Slot>>>; SHARDS],
    hasher: std::hash::RandomState,
}

pub(crate) enum Join<'a> {
    Leader(Leader<'a>),
    Follower(Follower),
}

impl Flights {
    pub(crate) fn new() -> Self {
        Flights {
            shards: Default::default(),
            hasher: Default::default(),
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, HashMap<String, Arc<Slot>>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        self.shards[i]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn join<'a>(&'a self, key: &'a str) -> Join<'a> {
        let mut shard = self.shard(key);
        if let Some(slot) = shard.get(key) {
            return Join::Follower(Follower(slot.subscribe()));
        }
        let slot = Arc::new(watch::Sender::new(None));
        shard.insert(key.to_owned(), Arc::clone(&slot));
        Join::Leader(Leader {
            flights: self,
            key,
            slot,
        })
    }
}

/// The caller that does the work; dropping it ends the flight (followers that got nothing
/// start over).
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    key: &'a str,
    slot: Arc<Slot>,
}

impl Leader<'_> {
    /// Wakes the followers with `shared`; the flight stays open until the leader is dropped.
    pub(crate) fn publish(&self, shared: Shared) {
        self.slot.send_replace(Some(shared));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let mut shard = self.flights.shard(self.key);
        if shard
            .get(self.key)
            .is_some_and(|slot| Arc::ptr_eq(slot, &self.slot))
        {
            shard.remove(self.key);
        }
    }
}

pub(crate) struct Follower(watch::Receiver<Option<Shared>>);

impl Follower {
    /// What the leader published, or `None` if it went away without publishing.
    pub(crate) async fn wait(mut self) -> Option<Shared> {
        self.0
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|shared| shared.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_get_what_the_leader_publishes() {
        let flights = Flights::new();
        let Join::Leader(leader) = flights.join("k") else {
            panic!("first caller must lead")
        };
        let Join::Follower(early) = flights.join("k") else {
            panic!("second caller must follow")
        };
        leader.publish(Shared::Value(Bytes::from_static(b"1")));
        let Join::Follower(late) = flights.join("k") else {
            panic!("the flight stays open until the leader is dropped")
        };
        drop(leader);
        for f in [early, late] {
            assert!(matches!(f.wait().await, Some(Shared::Value(v)) if v == "1"));
        }
        assert!(matches!(flights.join("k"), Join::Leader(_)));
    }

    #[tokio::test]
    async fn abandoned_flights_release_followers() {
        let flights = Flights::new();
        let leader = flights.join("k");
        let Join::Follower(f) = flights.join("k") else {
            panic!("second caller must follow")
        };
        drop(leader);
        assert!(f.wait().await.is_none());
    }
}
