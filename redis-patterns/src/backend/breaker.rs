//! The circuit breaker of a Redis backend: after a few consecutive connection failures it
//! opens, and calls fail at once instead of each waiting for a dead server. It closes on the
//! first success — normally that of the backend's background probe (see `redis.rs`), which
//! keeps trying on a short interval so that every client is back within moments of the
//! server; without a runtime to run that probe, one caller is let through per backoff.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::util::whole_millis as millis;

/// Consecutive connection failures before the breaker opens.
pub(super) const FAILURE_THRESHOLD: u32 = 3;

/// No backoff is longer, whatever the configuration says (and the arithmetic stays finite).
const LONGEST_BACKOFF: Duration = Duration::from_secs(3600);

pub(super) struct Breaker {
    origin: Instant,
    failures: AtomicU32,
    /// Milliseconds since `origin` until which calls are refused; 0 when closed.
    open_until_ms: AtomicU64,
    min: Duration,
    max: Duration,
}

/// What a failure did to the breaker.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Tripped {
    /// Still closed, or already open before.
    No,
    /// This failure opened it: start probing.
    Opened,
}

impl Breaker {
    pub(super) fn new(min: Duration, max: Duration) -> Self {
        Breaker {
            origin: Instant::now(),
            failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            min: min.min(LONGEST_BACKOFF),
            max: max.min(LONGEST_BACKOFF),
        }
    }

    fn now_ms(&self) -> u64 {
        millis(self.origin.elapsed())
    }

    pub(super) fn is_open(&self) -> bool {
        self.open_until_ms.load(Ordering::Acquire) != 0
    }

    /// `Ok` when a call may go to the server.
    pub(super) fn check(&self) -> Result<()> {
        let until = self.open_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return Ok(());
        }
        let now = self.now_ms();
        if now < until {
            return Err(Error::Unavailable {
                retry_in: Duration::from_millis(until - now),
            });
        }
        // The backoff elapsed and no probe closed the breaker yet: let exactly one caller
        // through, and hold the others off for as long as its attempt may take.
        let probe_window = millis(self.min).max(100);
        match self.open_until_ms.compare_exchange(
            until,
            now.saturating_add(probe_window),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Ok(()),
            Err(_) => Err(Error::Unavailable {
                retry_in: Duration::from_millis(probe_window),
            }),
        }
    }

    pub(super) fn succeeded(&self) {
        // Reads first, so the hot path does not write a shared cache line.
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
        if self.open_until_ms.swap(0, Ordering::AcqRel) != 0 {
            tracing::info!(target: "redis_patterns", "Redis is reachable again");
        }
    }

    pub(super) fn failed(&self) -> Tripped {
        let failures = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if failures < FAILURE_THRESHOLD {
            return Tripped::No;
        }
        let until = self
            .now_ms()
            .saturating_add(millis(self.backoff(failures)).max(1));
        let was_open = self.open_until_ms.swap(until, Ordering::AcqRel) != 0;
        if was_open {
            return Tripped::No;
        }
        tracing::warn!(
            target: "redis_patterns",
            "Redis failed {failures} times in a row; failing fast until it answers again"
        );
        Tripped::Opened
    }

    /// The pause after `failures` consecutive failures: `min` doubling per failure past the
    /// threshold up to `max`, with jitter over its upper half so that clients do not retry in
    /// lockstep.
    pub(super) fn backoff(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(FAILURE_THRESHOLD).min(20);
        let backoff = self.min.saturating_mul(1 << exponent).min(self.max);
        backoff.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_after_threshold_and_lets_one_caller_through_per_backoff() {
        let b = Breaker::new(Duration::from_millis(20), Duration::from_millis(40));
        for _ in 0..FAILURE_THRESHOLD - 1 {
            assert_eq!(b.failed(), Tripped::No);
            assert!(b.check().is_ok());
        }
        assert_eq!(b.failed(), Tripped::Opened);
        assert_eq!(b.failed(), Tripped::No, "opened once");
        assert!(matches!(b.check(), Err(Error::Unavailable { .. })));
        std::thread::sleep(Duration::from_millis(45));
        assert!(b.check().is_ok(), "one caller goes through");
        assert!(b.check().is_err(), "others are held off meanwhile");
        b.succeeded();
        assert!(!b.is_open());
        assert!(b.check().is_ok());
    }

    #[test]
    fn breaker_backoff_is_capped_and_never_overflows() {
        let b = Breaker::new(Duration::from_millis(10), Duration::from_millis(30));
        for _ in 0..50 {
            b.failed();
        }
        let until = b.open_until_ms.load(Ordering::Relaxed);
        assert!(until <= b.now_ms() + 30, "{until}");
        let huge = Breaker::new(Duration::MAX, Duration::MAX);
        for _ in 0..50 {
            huge.failed();
        }
        assert!(huge.check().is_err());
    }
}
