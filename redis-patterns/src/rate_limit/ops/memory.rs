//! The `mem://` versions of the rate limit scripts, step for step: the same integer
//! arithmetic (the scripts only use integers below 2^53, which Lua's doubles hold exactly) and
//! the same float steps where the script uses floats, so both backends decide alike.
//!
//! One difference of storage, not of decisions: `fixed_window.lua` keeps a bare counter and
//! lets its expiry at the window's end say which window it counts, which saves the script a
//! read and a write; the twin keeps the window number beside the count, because its expiry,
//! set from the store's microsecond clock on a finer `Instant`, can outlive the window by a
//! fraction of a microsecond.

use std::collections::VecDeque;
use std::time::Duration;

use crate::backend::Txn;

use super::super::algorithm::{Algorithm, Policy, Raw, fixed_window_raw};
use crate::util::whole_micros as micros;

#[derive(Default)]
struct FixedWindow {
    window: u64,
    count: u64,
}

/// One entry per admitted call, oldest first: the script's sorted set (one member per call).
#[derive(Default)]
struct Log(VecDeque<Admitted>);

struct Admitted {
    /// Admission time, µs on the store's clock; strictly increasing along the log, so it is
    /// also the call's identity for a refund (its `end` moves when an earlier call is refunded).
    at: u64,
    /// The running sum of the costs admitted to this log, up to and including this call,
    /// modulo [`END_MODULUS`].
    end: u64,
    cost: u64,
}

/// The script's modulus for `end` (2^52, so that Lua's doubles hold it): differences of ends
/// within one window are far smaller, so they are exact.
const END_MODULUS: u64 = 1 << 52;

/// `(a - b) mod 2^52`, as the script's `(a - b) % M`.
fn end_diff(a: u64, b: u64) -> u64 {
    a.wrapping_sub(b) & (END_MODULUS - 1)
}

#[derive(Default)]
struct WindowCounter {
    window: u64,
    count: u64,
    previous: u64,
}

/// The theoretical arrival time; `None` when missing.
#[derive(Default)]
struct Tat(Option<u64>);

fn ceil_ms(us: u64) -> Duration {
    Duration::from_millis(us.div_ceil(1000).max(1))
}

fn signed(x: u64) -> i64 {
    i64::try_from(x).unwrap_or(i64::MAX)
}

pub(super) fn take(txn: &mut Txn<'_>, key: &str, p: &Policy, cost: u64) -> Raw {
    let now = micros(txn.clock());
    match p.algorithm {
        Algorithm::FixedWindow => fixed_window(txn, key, p, cost, now),
        Algorithm::SlidingWindow => sliding_window(txn, key, p, cost, now),
        Algorithm::SlidingWindowCounter => sliding_window_counter(txn, key, p, cost, now),
        // A bucket of whole tokens is GCRA: the script is shared too (`gcra.lua`).
        Algorithm::TokenBucket | Algorithm::Gcra => gcra(txn, key, p, cost, now),
    }
}

pub(super) fn refund(txn: &mut Txn<'_>, key: &str, p: &Policy, cost: u64, stamp: u64) {
    // Every state here carries a TTL, so none means there is nothing left to give back
    // (and asking for the state would create an empty one).
    if txn.pttl(key).is_none() {
        return;
    }
    let now = micros(txn.clock());
    match p.algorithm {
        Algorithm::FixedWindow => {
            let state = txn.state::<FixedWindow>(key);
            if state.window == stamp {
                state.count = state.count.saturating_sub(cost);
            }
        }
        Algorithm::SlidingWindow => {
            let log = &mut txn.state::<Log>(key).0;
            // A refund follows its take within a round trip: search from the newest.
            if let Some(i) = log.iter().rposition(|c| c.at == stamp && c.cost == cost) {
                log.remove(i);
                // The calls admitted after it counted its units in their `end`.
                for later in log.iter_mut().skip(i) {
                    later.end = end_diff(later.end, cost);
                }
            }
            if log.is_empty() {
                txn.del(key);
            }
        }
        Algorithm::SlidingWindowCounter => {
            let state = txn.state::<WindowCounter>(key);
            if state.window == stamp {
                state.count = state.count.saturating_sub(cost);
            } else if state.window == stamp + 1 {
                state.previous = state.previous.saturating_sub(cost);
            }
        }
        Algorithm::TokenBucket | Algorithm::Gcra => {
            let state = txn.state::<Tat>(key);
            let tat = state.0.unwrap_or(now).max(now);
            let tat = tat
                .saturating_sub(cost.min(p.burst).saturating_mul(p.interval_us()))
                .max(now);
            if tat > now {
                state.0 = Some(tat);
                txn.expire(key, ceil_ms(tat - now));
            } else {
                txn.del(key);
            }
        }
    }
}

fn fixed_window(txn: &mut Txn<'_>, key: &str, p: &Policy, cost: u64, now: u64) -> Raw {
    let (limit, window) = (p.limit, p.window_us);
    let current = now / window;
    let state = txn.state::<FixedWindow>(key);
    let mut count = if state.window == current {
        state.count
    } else {
        0
    };
    let allowed = count + cost <= limit;
    if allowed {
        count += cost;
        *state = FixedWindow {
            window: current,
            count,
        };
    }
    // A fresh state created by this read expires with its window too.
    txn.expire(key, ceil_ms((current + 1) * window - now));
    fixed_window_raw(p, cost, allowed, count, now)
}

fn sliding_window(txn: &mut Txn<'_>, key: &str, p: &Policy, cost: u64, now: u64) -> Raw {
    let (limit, window) = (p.limit, p.window_us);
    let log = &mut txn.state::<Log>(key).0;
    while log
        .front()
        .is_some_and(|c| c.at.saturating_add(window) <= now)
    {
        log.pop_front();
    }
    let base = log.front().map_or(0, |c| end_diff(c.end, c.cost));
    let last_end = log.back().map_or(0, |c| c.end);
    let mut last_at = log.back().map(|c| c.at);
    let mut total = end_diff(last_end, base);
    let (mut allowed, mut retry_after, mut stamp, mut added) = (0, 0, 0, false);
    if total.saturating_add(cost) <= limit {
        allowed = 1;
        if cost > 0 {
            let at = match last_at {
                Some(newest) if newest >= now => newest.saturating_add(1),
                _ => now,
            };
            stamp = at;
            log.push_back(Admitted {
                at,
                end: end_diff(last_end.saturating_add(cost), 0),
                cost,
            });
            total = total.saturating_add(cost);
            last_at = Some(at);
            added = true;
        }
    } else if cost > limit {
        retry_after = -1;
    } else {
        // The oldest calls leave first: this one fits once the first call whose `end` is
        // `needed` past the base has left.
        let needed = total.saturating_add(cost).saturating_sub(limit);
        let leaving = log.partition_point(|c| end_diff(c.end, base) < needed);
        if let Some(c) = log.get(leaving) {
            retry_after = signed(c.at.saturating_add(window).saturating_sub(now));
        }
    }
    let reset_after = last_at.map_or(0, |at| at.saturating_add(window).saturating_sub(now));
    if log.is_empty() {
        // Only this read created it.
        txn.del(key);
    } else if added {
        txn.expire(key, ceil_ms(reset_after));
    }
    [
        allowed,
        signed(limit.saturating_sub(total)),
        retry_after,
        signed(reset_after),
        signed(stamp),
        signed(now),
    ]
}

fn sliding_window_counter(txn: &mut Txn<'_>, key: &str, p: &Policy, cost: u64, now: u64) -> Raw {
    let (limit, window) = (p.limit, p.window_us);
    let current = now / window;
    let elapsed = now - current * window;
    let state = txn.state::<WindowCounter>(key);
    let (mut count, mut previous) = (0, 0);
    if state.window == current {
        (count, previous) = (state.count, state.previous);
    } else if state.window + 1 == current {
        previous = state.count;
    }
    let weight = (window - elapsed) as f64 / window as f64;
    let (mut allowed, mut retry_after) = (0, 0);
    let (limit_f, cost_f, window_f, elapsed_f) =
        (limit as f64, cost as f64, window as f64, elapsed as f64);
    if previous as f64 * weight + count as f64 + cost_f <= limit_f {
        allowed = 1;
        count += cost;
        *state = WindowCounter {
            window: current,
            count,
            previous,
        };
    } else if cost > limit {
        retry_after = -1;
    } else {
        let room = limit_f - cost_f - count as f64;
        retry_after = if room >= 0.0 {
            (window_f - elapsed_f - room * window_f / previous as f64).ceil() as i64
        } else {
            (window_f - elapsed_f
                + (window_f - (limit_f - cost_f) * window_f / count as f64).max(0.0))
            .ceil() as i64
        };
    }
    let reset_after = if count > 0 {
        2 * window - elapsed
    } else if previous > 0 {
        window - elapsed
    } else {
        0
    };
    if reset_after == 0 {
        txn.del(key);
    } else {
        txn.expire(key, ceil_ms(2 * window - elapsed));
    }
    let remaining = (limit_f - previous as f64 * weight - count as f64)
        .floor()
        .max(0.0);
    [
        allowed,
        remaining as i64,
        retry_after,
        signed(reset_after),
        signed(current),
        signed(now),
    ]
}

fn gcra(txn: &mut Txn<'_>, key: &str, p: &Policy, cost: u64, now: u64) -> Raw {
    let (burst, interval) = (p.burst, p.interval_us());
    let state = txn.state::<Tat>(key);
    let stored = state.0;
    let tat = stored.unwrap_or(now).max(now);
    let tolerance = interval.saturating_mul(burst);
    let increment = cost.saturating_mul(interval);
    let new_tat = tat.saturating_add(increment);
    let (allowed, retry_after, ttl);
    if cost <= burst && new_tat <= now.saturating_add(tolerance) {
        allowed = 1;
        retry_after = 0;
        ttl = new_tat - now;
        if ttl > 0 {
            state.0 = Some(new_tat);
            txn.expire(key, ceil_ms(ttl));
        } else if stored.is_none() {
            txn.del(key);
        }
    } else {
        allowed = 0;
        ttl = tat - now;
        retry_after = if cost <= burst {
            signed(new_tat - tolerance - now)
        } else {
            -1
        };
        if stored.is_none() {
            txn.del(key);
        }
    }
    let remaining = tolerance.saturating_sub(ttl) / interval;
    [
        allowed,
        signed(remaining),
        retry_after,
        signed(ttl),
        0,
        signed(now),
    ]
}
