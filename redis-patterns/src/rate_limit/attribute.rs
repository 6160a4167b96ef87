//! What `#[rate_limited]` expands to: one [`RateCheck`] per stacked attribute, decided by
//! [`rate_limited`] before the body runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::backend::Backend;
use crate::client::Client;
use crate::util::observe;

use super::algorithm::{Algorithm, Outcome, Policy};
use super::ops;
use super::stats::{Event, TemplateCounters};
use super::{OnError, RateLimited, Sink, enforce};

/// The static part of one `#[rate_limited]` attribute.
#[doc(hidden)]
pub struct RateSpec {
    algorithm: Algorithm,
    window: Duration,
    /// `None`: the capacity is the call's limit.
    burst: Option<u64>,
    on_error: OnError,
    counters: TemplateCounters,
}

impl RateSpec {
    pub const fn new(
        name: &'static str,
        algorithm: Algorithm,
        window_ms: u64,
        burst: Option<u64>,
        on_error: OnError,
    ) -> Self {
        RateSpec {
            algorithm,
            window: Duration::from_millis(window_ms),
            burst,
            on_error,
            counters: TemplateCounters::new(name),
        }
    }
}

/// One limit of one call: the spec, the rendered key and the values of `limit` and `cost`.
#[doc(hidden)]
pub struct RateCheck<'a> {
    client: &'a Client,
    spec: &'static RateSpec,
    key: String,
    policy: Policy,
    cost: u64,
}

impl<'a> RateCheck<'a> {
    #[inline]
    pub fn new(
        client: &'a Client,
        spec: &'static RateSpec,
        key: String,
        limit: u64,
        cost: u64,
    ) -> Self {
        let burst = spec.burst.unwrap_or(limit);
        RateCheck {
            client,
            spec,
            key,
            policy: Policy::new(spec.algorithm, limit, spec.window, burst),
            cost,
        }
    }

    async fn take(&self) -> Result<Option<Outcome>, RateLimited> {
        enforce(
            &self.client.inner().backend,
            &self.key,
            &self.policy,
            self.cost,
            self.spec.on_error,
            &Sink::Template(&self.spec.counters),
        )
        .await
    }

    /// What giving back `taken` needs, owned, so that it can also be done from a guard.
    fn refund_of(&self, taken: Outcome) -> Refund {
        Refund {
            backend: Arc::clone(&self.client.inner().backend),
            name: self.spec.counters.name(),
            key: self.key.clone(),
            policy: self.policy,
            cost: self.cost,
            taken,
        }
    }
}

/// Units one limit took for a call that another limit then denied.
struct Refund {
    backend: Arc<Backend>,
    name: &'static str,
    key: String,
    policy: Policy,
    cost: u64,
    taken: Outcome,
}

impl Refund {
    async fn run(self) {
        let result = ops::refund(
            &self.backend,
            &self.key,
            &self.policy,
            self.cost,
            &self.taken,
        )
        .await;
        if let Err(error) = result {
            tracing::warn!(
                target: "redis_patterns",
                rate_limit = self.name,
                %error,
                "could not give back units of a call another limit denied; they stay counted \
                 until they expire"
            );
        }
    }
}

/// The refunds a stacked check still owes. If the call is dropped (cancelled) before it
/// decided, the units taken so far are given back from a background task.
struct Owed(Vec<Refund>);

impl Drop for Owed {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let owed = std::mem::take(&mut self.0);
        crate::util::spawn_if_runtime(async move {
            for refund in owed.into_iter().rev() {
                refund.run().await;
            }
        });
    }
}

/// Admits a call only if every limit admits it. Limits are taken in order; when one denies,
/// the units the earlier ones took are given back, so a denied call consumes nothing (other
/// calls may see those units taken for the length of one round trip: the limits never admit
/// more than they allow, but may briefly admit less).
#[doc(hidden)]
pub async fn rate_limited(checks: &[RateCheck<'_>]) -> Result<(), RateLimited> {
    let Some(first) = checks.first() else {
        return Ok(());
    };
    let span = tracing::debug_span!(
        target: "redis_patterns",
        "rate_limit",
        limiter = first.spec.counters.name(),
        limits = checks.len(),
        outcome = tracing::field::Empty,
    );
    let started = observe::TIMING.then(Instant::now);
    let decided = decide(checks).instrument(span.clone()).await;
    if decided.is_ok() {
        span.record("outcome", "allowed");
    }
    if let Some(started) = started {
        first.spec.counters.duration(started.elapsed());
    }
    decided
}

/// The checks of one call, in order, with refunds when one denies.
async fn decide(checks: &[RateCheck<'_>]) -> Result<(), RateLimited> {
    if let [only] = checks {
        only.take().await?;
        only.spec.counters.count(Event::Allowed);
        return Ok(());
    }
    let mut owed = Owed(Vec::with_capacity(checks.len()));
    for check in checks {
        match check.take().await {
            Ok(Some(outcome)) => owed.0.push(check.refund_of(outcome)),
            // The backend failed and this limit's policy admits.
            Ok(None) => {}
            Err(denied) => {
                while let Some(refund) = owed.0.pop() {
                    refund.run().await;
                }
                return Err(denied);
            }
        }
    }
    // Admitted by every limit: nothing is owed.
    owed.0.clear();
    for check in checks {
        check.spec.counters.count(Event::Allowed);
    }
    Ok(())
}

/// The return types `#[rate_limited]` accepts: `Result<T, E>` with `E: From<RateLimited>`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a #[rate_limited] function must return `Result<T, E>` with `E: From<RateLimited>`; `{Self}` is not such a type",
    label = "a denied call returns `Err(RateLimited.into())`, so this must be a `Result` whose error converts from `redis_patterns::rate_limit::RateLimited`",
    note = "implement `From<redis_patterns::rate_limit::RateLimited>` for the error type, or return a `Result` whose error already converts (`Box<dyn std::error::Error>`, `anyhow::Error`)"
)]
pub trait RateLimitedReturn {
    fn rate_limited(denied: RateLimited) -> Self;
}

#[diagnostic::do_not_recommend]
impl<T, E: From<RateLimited>> RateLimitedReturn for Result<T, E> {
    #[inline]
    fn rate_limited(denied: RateLimited) -> Self {
        Err(E::from(denied))
    }
}
