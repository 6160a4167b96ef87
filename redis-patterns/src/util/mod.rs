//! Small helpers every pattern shares: owner tokens, jitter, poison-free locking, work
//! handed to a background task when there is a runtime to run it, time conversions,
//! sharded maps, counters, and what is reported outside the process (metrics).

pub(crate) mod counters;
pub(crate) mod glob;
pub(crate) mod handler;
pub(crate) mod observe;
mod sharded;
pub(crate) mod window;

pub(crate) use self::sharded::Sharded;

use std::future::Future;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

/// A random 128-bit owner token, hex-encoded (locks and stampede locks).
///
/// The bytes come from the operating system's CSPRNG, fetched 512 at a time per thread (one
/// `getrandom` call per 32 tokens: a token is on every lock acquisition's path).
pub(crate) fn new_token() -> String {
    random_hex("")
}

/// [`new_token`] followed by `suffix`, in one allocation.
pub(crate) fn new_token_with(suffix: &str) -> String {
    random_hex(suffix)
}

fn random_hex(suffix: &str) -> String {
    const TOKEN: usize = 16;
    const BATCH: usize = 32 * TOKEN;
    thread_local! {
        static POOL: std::cell::RefCell<([u8; BATCH], usize)> =
            const { std::cell::RefCell::new(([0; BATCH], BATCH)) };
    }
    let mut bytes = [0u8; TOKEN];
    let pooled = POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        let (buffer, used) = &mut *pool;
        if *used + TOKEN > BATCH {
            getrandom::fill(buffer).ok()?;
            *used = 0;
        }
        bytes.copy_from_slice(&buffer[*used..*used + TOKEN]);
        // Handed out once: the pool forgets what it gave.
        buffer[*used..*used + TOKEN].fill(0);
        *used += TOKEN;
        Some(())
    });
    if !matches!(pooled, Ok(Some(()))) && getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to a seeded generator, still unique per process.
        bytes = fastrand::u128(..).to_le_bytes();
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut token = String::with_capacity(2 * TOKEN + suffix.len());
    for b in bytes {
        token.push(char::from(HEX[usize::from(b >> 4)]));
        token.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    token.push_str(suffix);
    token
}

/// `base` randomised by ±50 %, so that waiters do not retry in lockstep.
pub(crate) fn jittered(base: Duration) -> Duration {
    base.mul_f64(0.5 + fastrand::f64())
}

/// Whole milliseconds of `d`, saturating (a `Duration` can hold more than `u64` milliseconds).
pub(crate) fn whole_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whole microseconds of `d`, saturating.
pub(crate) fn whole_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Time since the Unix epoch by this machine's clock (zero if the clock is before 1970).
pub(crate) fn unix_time() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Locks a mutex, ignoring poisoning: no critical section in this crate leaves its data
/// inconsistent when it panics, and a poisoned lock must not take the cache down with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// [`lock`] for reading an `RwLock`.
pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// [`lock`] for writing an `RwLock`.
pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `task` on the current tokio runtime; `false` (and `task` is dropped) outside one.
/// For clean-up started from `Drop` (releasing a cancelled call's lock, refunding its units)
/// and for the backend's health checks.
pub(crate) fn spawn_if_runtime<F>(task: F) -> bool
where
    F: Future<Output = ()> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(task);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_128_bit_hex_and_unique() {
        let a = new_token();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_token());
    }

    #[test]
    fn tokens_stay_unique_across_pool_refills() {
        // 1,000 tokens span 31 refills of the per-thread pool.
        let tokens: std::collections::HashSet<String> = (0..1000).map(|_| new_token()).collect();
        assert_eq!(tokens.len(), 1000);
        assert!(tokens.iter().all(|t| t.len() == 32 && t != &"0".repeat(32)));
    }

    #[test]
    fn jitter_stays_within_half_either_side() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_millis(100));
            assert!(d >= Duration::from_millis(50) && d <= Duration::from_millis(150));
        }
    }

    #[test]
    fn nothing_is_spawned_outside_a_runtime() {
        assert!(!spawn_if_runtime(async {}));
    }
}
