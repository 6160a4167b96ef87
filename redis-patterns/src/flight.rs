//! In-process single-flight: concurrent calls for one key share one backend read and at most
//! one computation.
//!
//! The first caller of a key becomes the *leader*; later callers *follow* and wait for what
//! the leader publishes. The flight stays registered until the leader is done (including the
//! write to the backend), so a caller arriving in between joins it instead of starting over.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};

use foldhash::fast::RandomState;

use crate::util::Sharded;
use bytes::Bytes;
use tokio::sync::watch;

const SHARDS: usize = 16;

/// What a leader hands its followers.
#[derive(Clone, Debug)]
pub(crate) enum Shared {
    /// The stored envelope of the result (header and encoded value).
    Value(Bytes),
    /// The result cannot be shared (e.g. an `Err`): followers run the function themselves.
    NotShareable,
}

type Slot = watch::Sender<Option<Shared>>;

/// A flight in the map. The channel is only created when a follower shows up, so that the
/// common case — a hit nobody else is waiting for — costs one map insert and one removal.
type Entry = Option<Arc<Slot>>;

/// Keys carry user input, so the hash is seeded per process (foldhash, hashbrown's default):
/// fast, and not open to precomputed collisions.
type Map = HashMap<String, Entry, RandomState>;

pub(crate) struct Flights {
    shards: Sharded<Map, SHARDS>,
}

pub(crate) enum Join<'a> {
    Leader(Leader<'a>),
    Follower(Follower),
}

impl Flights {
    pub(crate) fn new() -> Self {
        Flights {
            shards: Sharded::default(),
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Map> {
        self.shards.lock(key)
    }

    pub(crate) fn join<'a>(&'a self, key: &'a str) -> Join<'a> {
        let mut shard = self.shard(key);
        if let Some(entry) = shard.get_mut(key) {
            let slot = entry.get_or_insert_with(|| Arc::new(watch::Sender::new(None)));
            return Join::Follower(Follower(slot.subscribe()));
        }
        shard.insert(key.to_owned(), None);
        Join::Leader(Leader {
            flights: self,
            key,
            ended: false,
        })
    }
}

/// The caller that does the work. Dropping it ends the flight; followers that got nothing
/// start over.
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    key: &'a str,
    /// Set by `finish`: the entry is already removed, and the key may belong to a new flight.
    ended: bool,
}

impl Leader<'_> {
    /// Wakes the current followers with `shared` and keeps the flight open, so callers
    /// arriving before the leader is dropped (e.g. while it writes the value) join it and get
    /// `shared` at once. `shared` is only built if somebody is waiting.
    pub(crate) fn publish(&mut self, shared: impl FnOnce() -> Shared) {
        let mut shard = self.flights.shard(self.key);
        let Some(entry) = shard.get_mut(self.key) else {
            return;
        };
        let slot = entry.get_or_insert_with(|| Arc::new(watch::Sender::new(None)));
        slot.send_replace(Some(shared()));
    }

    /// Ends the flight, handing `shared` to the followers if there are any.
    pub(crate) fn finish(mut self, shared: impl FnOnce() -> Shared) {
        let entry = self.flights.shard(self.key).remove(self.key);
        self.ended = true;
        if let Some(Some(slot)) = entry
            && slot.borrow().is_none()
        {
            slot.send_replace(Some(shared()));
        }
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.flights.shard(self.key).remove(self.key);
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
        let Join::Leader(mut leader) = flights.join("k") else {
            panic!("first caller must lead")
        };
        let Join::Follower(early) = flights.join("k") else {
            panic!("second caller must follow")
        };
        leader.publish(|| Shared::Value(Bytes::from_static(b"1")));
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
    async fn finish_hands_the_value_to_followers_and_ends_the_flight() {
        let flights = Flights::new();
        let Join::Leader(leader) = flights.join("k") else {
            panic!("first caller must lead")
        };
        let Join::Follower(f) = flights.join("k") else {
            panic!("second caller must follow")
        };
        leader.finish(|| Shared::NotShareable);
        assert!(matches!(f.wait().await, Some(Shared::NotShareable)));
        assert!(matches!(flights.join("k"), Join::Leader(_)));
    }

    #[test]
    fn an_unwatched_flight_builds_nothing_to_share() {
        let flights = Flights::new();
        let Join::Leader(leader) = flights.join("k") else {
            panic!("first caller must lead")
        };
        leader.finish(|| panic!("nobody is waiting, so nothing is built"));
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
