//! The rate limit's atomic operations: take `cost` units, and give them back (a stacked limit
//! refunds what it took when a later limit denies). Each is one Lua script per algorithm
//! (`scripts/rate_limit/*.lua`: one round trip per decision, on the server's `TIME`) and the
//! same steps in Rust for `mem://` (`ops/memory.rs`, on the store's clock), kept line for line
//! alike; the integration tests run every behaviour on both.

use std::sync::LazyLock;

use redis::Script;

use super::algorithm::{Algorithm, MAX_UNITS, Outcome, Policy, fixed_window_raw, outcome};
use crate::backend::{AtomicOp, Backend, ScriptArgs, Txn, unexpected_reply};
use crate::error::Result;

pub(super) mod memory;

fn script(algorithm: Algorithm) -> &'static Script {
    static FIXED_WINDOW: LazyLock<Script> =
        LazyLock::new(|| Script::new(include_str!("../scripts/rate_limit/fixed_window.lua")));
    static SLIDING_WINDOW: LazyLock<Script> =
        LazyLock::new(|| Script::new(include_str!("../scripts/rate_limit/sliding_window.lua")));
    static SLIDING_WINDOW_COUNTER: LazyLock<Script> = LazyLock::new(|| {
        Script::new(include_str!(
            "../scripts/rate_limit/sliding_window_counter.lua"
        ))
    });
    static GCRA: LazyLock<Script> =
        LazyLock::new(|| Script::new(include_str!("../scripts/rate_limit/gcra.lua")));
    match algorithm {
        Algorithm::FixedWindow => &FIXED_WINDOW,
        Algorithm::SlidingWindow => &SLIDING_WINDOW,
        Algorithm::SlidingWindowCounter => &SLIDING_WINDOW_COUNTER,
        // A bucket of whole tokens decides as GCRA does (see the script's header).
        Algorithm::TokenBucket | Algorithm::Gcra => &GCRA,
    }
}

/// A call of `policy`'s script: `KEYS = [key]`, `ARGV = [op, limit or burst, window or
/// interval, cost]`, and for a refund the stamp its take returned.
fn arguments(
    invocation: &mut impl ScriptArgs,
    policy: &Policy,
    key: &str,
    op: &str,
    cost: u64,
    stamp: Option<u64>,
) {
    let period = if policy.algorithm.has_burst() {
        policy.interval_us()
    } else {
        policy.window_us
    };
    invocation
        .key(key)
        .arg(op)
        .arg(policy.capacity())
        .arg(period)
        .arg(cost);
    if let Some(stamp) = stamp {
        invocation.arg(stamp);
    }
}

/// A script's reply of `N` integers, read in place.
fn integers<const N: usize>(reply: &redis::Value) -> Option<[i64; N]> {
    let redis::Value::Array(items) = reply else {
        return None;
    };
    let mut out = [0; N];
    if items.len() != N {
        return None;
    }
    for (slot, item) in out.iter_mut().zip(items) {
        let redis::Value::Int(value) = item else {
            return None;
        };
        *slot = *value;
    }
    Some(out)
}

/// Takes `cost` units if they fit, atomically; a denied call takes nothing.
struct Take<'a> {
    key: &'a str,
    policy: &'a Policy,
    cost: u64,
}

impl AtomicOp for Take<'_> {
    type Output = Outcome;
    /// Read in place (six integers, three for the fixed window), without collecting a
    /// `Vec<i64>` first.
    type Reply = redis::Value;

    fn script(&self) -> &'static Script {
        script(self.policy.algorithm)
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        arguments(invocation, self.policy, self.key, "take", self.cost, None);
    }

    fn answer(&self, reply: redis::Value) -> Result<Outcome> {
        let raw = match self.policy.algorithm {
            Algorithm::FixedWindow => integers(&reply).and_then(|[allowed, count, now]| {
                Some(fixed_window_raw(
                    self.policy,
                    self.cost,
                    allowed == 1,
                    u64::try_from(count).ok()?,
                    u64::try_from(now).ok()?,
                ))
            }),
            _ => integers(&reply),
        };
        match raw {
            Some(raw) => Ok(outcome(self.policy, raw)),
            None => Err(unexpected_reply("rate_limit take")),
        }
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) -> Outcome {
        outcome(
            self.policy,
            memory::take(txn, self.key, self.policy, self.cost),
        )
    }
}

/// Gives back the units a take with `stamp` took, as far as they are still counted.
struct Refund<'a> {
    key: &'a str,
    policy: &'a Policy,
    cost: u64,
    stamp: u64,
}

impl AtomicOp for Refund<'_> {
    type Output = ();
    type Reply = i64;

    fn script(&self) -> &'static Script {
        script(self.policy.algorithm)
    }

    fn arguments(&self, invocation: &mut impl ScriptArgs) {
        arguments(
            invocation,
            self.policy,
            self.key,
            "refund",
            self.cost,
            Some(self.stamp),
        );
    }

    fn answer(&self, _: i64) -> Result<()> {
        Ok(())
    }

    fn key(&self) -> &str {
        self.key
    }

    fn in_memory(&self, txn: &mut Txn<'_>) {
        memory::refund(txn, self.key, self.policy, self.cost, self.stamp);
    }
}

/// Takes `cost` units of `policy` under `base` (`ns:{template}`), atomically.
pub(crate) async fn take(
    backend: &Backend,
    base: &str,
    policy: &Policy,
    cost: u64,
) -> Result<Outcome> {
    // A cost above every limit is denied as "never fits" whatever its size; clamping it keeps
    // the arithmetic in range on both backends.
    let cost = cost.min(MAX_UNITS + 1);
    let key = policy.state_key(base);
    backend
        .run(&Take {
            key: &key,
            policy,
            cost,
        })
        .await
}

/// Gives back the units `taken` took, as far as they are still counted.
pub(crate) async fn refund(
    backend: &Backend,
    base: &str,
    policy: &Policy,
    cost: u64,
    taken: &Outcome,
) -> Result<()> {
    let cost = cost.min(MAX_UNITS + 1);
    let key = policy.state_key(base);
    let refund = Refund {
        key: &key,
        policy,
        cost,
        stamp: taken.stamp,
    };
    backend.run(&refund).await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_reply_of_another_shape_is_refused() {
        use redis::Value::{Array, BulkString, Int};
        assert_eq!(
            integers::<3>(&Array(vec![Int(1), Int(2), Int(3)])),
            Some([1, 2, 3])
        );
        assert_eq!(integers::<3>(&Array(vec![Int(1), Int(2)])), None);
        assert_eq!(
            integers::<2>(&Array(vec![Int(1), BulkString(b"2".to_vec())])),
            None
        );
        assert_eq!(integers::<1>(&Int(1)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refund_in_the_middle_of_the_sliding_log_keeps_later_calls_exact() {
        let m = crate::backend::MemoryBackend::new(None);
        let window = Duration::from_secs(10);
        let p = Policy::new(Algorithm::SlidingWindow, 10, window, 10);
        let key = "{k}:sw2:10000";
        let take = |cost| {
            outcome(
                &p,
                m.atomically(key, |txn| memory::take(txn, key, &p, cost)),
            )
        };
        let first = take(3);
        tokio::time::advance(Duration::from_millis(1)).await;
        let second = take(4);
        tokio::time::advance(Duration::from_millis(1)).await;
        let third = take(1);
        m.atomically(key, |txn| memory::refund(txn, key, &p, 3, first.stamp));
        m.atomically(key, |txn| memory::refund(txn, key, &p, 1, third.stamp));
        assert_eq!(take(0).decision.remaining, 6);
        // 7 do not fit until the second call, the only one left, has left the window.
        let denied = take(7).decision;
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after, second.decision.at + window - denied.at);
        m.atomically(key, |txn| memory::refund(txn, key, &p, 4, second.stamp));
        assert_eq!(take(0).decision.remaining, 10);
        assert_eq!(m.pttl(key), None, "an empty log is deleted");
    }
}
