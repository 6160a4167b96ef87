//! What `#[rate_limited]` expands to: one [`RateCheck`] per stacked attribute, decided by
//! [`rate_limited`] before the body runs.

use std::time::Duration;

use crate::client::Client;

use super::algorithm::{self, Algorithm, Outcome, Policy};
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

    async fn refund(&self, taken: &Outcome) {
        let backend = &self.client.inner().backend;
        if let Err(error) =
            algorithm::refund(backend, &self.key, &self.policy, self.cost, taken).await
        {
            tracing::warn!(
                target: "redis_patterns",
                rate_limit = self.spec.counters.name(),
                %error,
                "could not give back units of a call another limit denied; they stay counted \
                 until they expire"
            );
        }
    }
}

/// Admits a call only if every limit admits it. Limits are taken in order; when one denies,
/// the units the earlier ones took are given back, so a denied call consumes nothing (other
/// calls may see those units taken for the length of one round trip: the limits never admit
/// more than they allow, but may briefly admit less).
#[doc(hidden)]
pub async fn rate_limited(checks: &[RateCheck<'_>]) -> Result<(), RateLimited> {
    if let [only] = checks {
        only.take().await?;
        only.spec.counters.count(Event::Allowed);
        return Ok(());
    }
    let mut taken: Vec<(&RateCheck<'_>, Outcome)> = Vec::with_capacity(checks.len());
    for check in checks {
        match check.take().await {
            Ok(Some(outcome)) => taken.push((check, outcome)),
            // The backend failed and this limit's policy admits.
            Ok(None) => {}
            Err(denied) => {
                for (check, outcome) in taken.iter().rev() {
                    check.refund(outcome).await;
                }
                return Err(denied);
            }
        }
    }
    for check in checks {
        check.spec.counters.count(Event::Allowed);
    }
    Ok(())
}

/// The return types `#[rate_limited]` accepts: `Result<T, E>` with `E: From<RateLimited>`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a #[rate_limited] function must return `Result<T, E>` with `E: From<RateLimited>`; `{Self}` is not such a type",
    label = "a denied call returns `Err(RateLimited.into())`, so this must be a `Result` whose error converts from `redis_patterns::RateLimited`",
    note = "implement `From<redis_patterns::RateLimited>` for the error type, or return a `Result` whose error already converts (`Box<dyn std::error::Error>`, `anyhow::Error`)"
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
