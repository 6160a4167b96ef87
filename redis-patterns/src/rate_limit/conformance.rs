//! Conformance checks of the rate limit's atomic operations (`ops.rs`), for each algorithm:
//! `Take` admits exactly the limit and then denies with a sane `retry_after`, leaving its state
//! with a TTL bounded by the window; `Refund` gives back what a take took.

use std::time::Duration;

use super::algorithm::{Algorithm, Outcome, Policy};
use super::ops::{refund, take};
use crate::client::Client;
use crate::test_util::Check;
use crate::test_util::conformance::{CheckResult, Failure, check, ensure, ensure_eq, scratch_key};

pub(crate) fn checks() -> Vec<Check> {
    // Named as the scripts (`scripts/rate_limit/<name>.lua`), which `Algorithm::name` follows.
    macro_rules! for_each_algorithm {
        ($($algorithm:ident: $name:literal),* $(,)?) => {
            vec![$(
                check!(
                    concat!("rate_limit/", $name, ": take admits exactly the limit, then denies"),
                    take_admits_exactly_the_limit,
                    Algorithm::$algorithm,
                ),
                check!(
                    concat!(
                        "rate_limit/", $name,
                        ": refund gives back what a take took; a denied take takes nothing"
                    ),
                    refund_gives_back_what_was_taken,
                    Algorithm::$algorithm,
                ),
            )*]
        };
    }
    for_each_algorithm!(
        FixedWindow: "fixed_window",
        SlidingWindow: "sliding_window",
        SlidingWindowCounter: "sliding_window_counter",
        TokenBucket: "token_bucket",
        Gcra: "gcra",
    )
}

const LIMIT: u64 = 5;
/// Long enough that no window ends (and no unit refills) while a check runs.
const WINDOW: Duration = Duration::from_secs(3600);

/// A limit of 5 per hour (a capacity of 5 for `token_bucket` and `gcra`) on a key of its own.
struct Limit<'a> {
    client: &'a Client,
    policy: Policy,
    base: String,
}

impl<'a> Limit<'a> {
    fn new(client: &'a Client, algorithm: Algorithm) -> Self {
        Limit {
            client,
            policy: Policy::new(algorithm, LIMIT, WINDOW, LIMIT),
            base: scratch_key(client),
        }
    }

    async fn take(&self, cost: u64) -> Result<Outcome, Failure> {
        Ok(take(self.client.backend(), &self.base, &self.policy, cost).await?)
    }

    async fn refund(&self, cost: u64, taken: &Outcome) -> Result<(), Failure> {
        Ok(refund(self.client.backend(), &self.base, &self.policy, cost, taken).await?)
    }

    /// What may pass until the limit is full again: a window, or two for the sliding window
    /// counter, whose previous window still weighs on the current one.
    fn horizon(&self) -> Duration {
        match self.policy.algorithm {
            Algorithm::SlidingWindowCounter => 2 * WINDOW,
            _ => WINDOW,
        }
    }
}

async fn take_admits_exactly_the_limit(client: &Client, algorithm: Algorithm) -> CheckResult {
    let limit = Limit::new(client, algorithm);
    let horizon = limit.horizon();
    for n in 1..=LIMIT {
        let d = limit.take(1).await?.decision;
        ensure_eq!(
            (d.allowed, d.limit, d.remaining, d.retry_after),
            (true, LIMIT, LIMIT - n, Duration::ZERO),
            "take {n} of {LIMIT}: (allowed, limit, remaining, retry_after)"
        );
        ensure!(
            d.reset_after > Duration::ZERO && d.reset_after <= horizon,
            "take {n} of {LIMIT}: reset_after {:?} is not within (0, {horizon:?}]",
            d.reset_after
        );
    }
    let denied = limit.take(1).await?.decision;
    ensure_eq!(
        (denied.allowed, denied.limit, denied.remaining),
        (false, LIMIT, 0),
        "take {} of {LIMIT}: (allowed, limit, remaining)",
        LIMIT + 1
    );
    ensure!(
        denied.retry_after > Duration::ZERO && denied.retry_after <= horizon,
        "a denial's retry_after {:?} is not within (0, {horizon:?}]",
        denied.retry_after
    );
    let read = limit.take(0).await?.decision;
    ensure_eq!(
        (read.allowed, read.remaining),
        (true, 0),
        "a read (cost 0) of a full limit: (allowed, remaining)"
    );
    let never = limit.take(LIMIT + 1).await?.decision;
    ensure_eq!(
        (never.allowed, never.retry_after),
        (false, WINDOW),
        "a cost above the limit: (allowed, retry_after of a whole window)"
    );
    let key = limit.policy.state_key(&limit.base);
    let ttl = client.backend().pttl(&key).await?;
    ensure!(
        ttl.is_some_and(|t| t > Duration::ZERO && t <= horizon),
        "the state key {key}'s TTL {ttl:?} is not within (0, {horizon:?}]"
    );
    Ok(())
}

async fn refund_gives_back_what_was_taken(client: &Client, algorithm: Algorithm) -> CheckResult {
    let limit = Limit::new(client, algorithm);
    let first = limit.take(4).await?;
    ensure_eq!(
        (first.decision.allowed, first.decision.remaining),
        (true, 1),
        "taking 4 of {LIMIT}: (allowed, remaining)"
    );
    let denied = limit.take(2).await?.decision;
    ensure_eq!(
        (denied.allowed, denied.remaining),
        (false, 1),
        "taking 2 more: (allowed, remaining)"
    );
    let last = limit.take(1).await?;
    ensure_eq!(
        (last.decision.allowed, last.decision.remaining),
        (true, 0),
        "taking the last 1 after a denial: (allowed, remaining)"
    );
    limit.refund(1, &last).await?;
    let d = limit.take(0).await?.decision;
    ensure_eq!(
        d.remaining,
        1,
        "remaining after refunding the last take of 1"
    );
    limit.refund(4, &first).await?;
    let d = limit.take(0).await?.decision;
    ensure_eq!(
        d.remaining,
        LIMIT,
        "remaining after refunding the first take of 4 too"
    );
    Ok(())
}
