//! A value split into `N` mutex-guarded shards chosen by a seeded hash of a key, so that
//! callers on different keys rarely contend. Keys carry user input, so the hash is seeded per
//! instance (foldhash, hashbrown's default): fast, and not open to precomputed collisions.

use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};

use foldhash::fast::RandomState;

pub(crate) struct Sharded<T, const N: usize> {
    shards: [Mutex<T>; N],
    hasher: RandomState,
}

impl<T: Default, const N: usize> Default for Sharded<T, N> {
    fn default() -> Self {
        Sharded {
            shards: std::array::from_fn(|_| Mutex::new(T::default())),
            hasher: RandomState::default(),
        }
    }
}

impl<T, const N: usize> Sharded<T, N> {
    /// The shard of `key`, locked (ignoring poisoning, as [`lock`](super::lock)).
    #[inline]
    pub(crate) fn lock(&self, key: &str) -> MutexGuard<'_, T> {
        super::lock(&self.shards[self.index(key)])
    }

    /// `key`'s shard: the hash's top bits, scaled to `N` (multiply-shift, no modulo bias).
    fn index(&self, key: &str) -> usize {
        let hash = u128::from(self.hasher.hash_one(key));
        // < N by construction: (hash / 2^64) * N with hash < 2^64.
        ((hash * N as u128) >> 64) as usize
    }

    /// Every shard, for whole-store work (sweeps, counts in tests).
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = MutexGuard<'_, T>> {
        self.shards.iter().map(super::lock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_always_lands_in_the_same_shard_and_keys_spread() {
        let sharded = Sharded::<Vec<String>, 16>::default();
        for i in 0..1600 {
            let key = format!("key:{i}");
            sharded.lock(&key).push(key.clone());
            assert_eq!(sharded.index(&key), sharded.index(&key));
        }
        let sizes: Vec<usize> = sharded.iter().map(|s| s.len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 1600);
        assert!(sizes.iter().all(|&n| n > 50), "{sizes:?}");
    }
}
