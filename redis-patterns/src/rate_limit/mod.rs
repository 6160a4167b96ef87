//! Rate limiting: [`RateLimiter`] applies limits by key at run time; `#[rate_limited]`
//! (at the crate root) applies them to a function. Both decide through the same operations.
//!
//! Every decision is one atomic step on the backend: one Lua script (one round trip) on Redis,
//! reading the server's clock with `TIME` so that instances with skewed clocks agree, or one
//! critical section on the shard of the key's hash tag for `mem://`, on the store's clock.
//! The state of `ns:{api:#alice}` lives under `ns:{api:#alice}:<algorithm>:<window>`: inside
//! the same hash tag (Cluster-safe) and with a TTL tied to the window.

mod algorithm;
pub(crate) mod attribute;
#[cfg(feature = "test-util")]
pub(crate) mod conformance;
mod decision;
#[cfg(feature = "tower")]
pub mod http;
mod ops;
pub(crate) mod stats;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::Backend;
use crate::client::Client;
use crate::error::Result;
use crate::util::observe::{self, Metric};

pub use self::algorithm::Algorithm;
use self::algorithm::{Outcome, Policy};
pub use self::decision::{Decision, DenyReason, OnError, RateLimited};
use self::stats::{Counters, Event, TemplateCounters};
pub use self::stats::{RateLimitStats, stats_by_template};

/// A rate limit applied by key: `limiter.check("api:alice", 1)`. The same limits as
/// `#[rate_limited]`, for code that decides at run time what to limit (an HTTP layer, a job
/// queue). Cheap to clone; clones share their counters.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis_patterns::Error> {
/// use std::time::Duration;
/// use redis_patterns::Client;
/// use redis_patterns::rate_limit::RateLimiter;
///
/// let client = Client::new("mem://")?; // or redis://…; without `.client(…)`, the default client
/// let limiter = RateLimiter::sliding_window(100, Duration::from_secs(60)).client(client);
/// let d = limiter.check("api:alice", 1).await?;
/// assert!(d.allowed);
/// assert_eq!(d.remaining, 99);
/// # Ok(()) }
/// ```
///
/// A key's `:` separate segments: the first is the limit's name, each further one a value,
/// escaped like a placeholder value. So `"api:alice"` is stored as `ns:{api:#alice}:sw2:60000`
/// and shares its state with `#[rate_limited(key = "api:<user>")]` for `user = "alice"`
/// (with the same algorithm and window), and no key can leave its braces.
///
/// # Limits
/// The builders accept every value and clamp what is out of range, so that both backends
/// compute exactly (Lua's numbers are doubles, exact up to 2^53) and agree on every decision:
/// - `limit` and `burst` are at most 2^40 (about 10^12);
/// - `window` is at least 1 µs (a zero window is 1 µs) and at most 2^50 µs (about 35 years),
///   counted in whole microseconds;
/// - the capacity of `token_bucket` and `gcra` is at most what refills in 2^51 µs (about 71
///   years): `burst × window / limit ≤ 2^51 µs`;
/// - a `cost` above the limit (or capacity) is denied, whatever its size.
///
/// The getters ([`limit`](Self::limit), [`window`](Self::window), [`burst`](Self::burst))
/// return the clamped values.
///
/// ```
/// use std::time::Duration;
/// use redis_patterns::rate_limit::RateLimiter;
///
/// let limiter = RateLimiter::token_bucket(u64::MAX, Duration::ZERO, u64::MAX);
/// assert_eq!(limiter.limit(), 1 << 40);
/// assert_eq!(limiter.window(), Duration::from_micros(1));
/// let slow = RateLimiter::gcra(1, Duration::MAX, 1 << 40);
/// assert_eq!(slow.window(), Duration::from_micros(1 << 50));
/// assert_eq!(slow.burst(), 2, "2 units refill in 70 years");
/// ```
#[derive(Clone)]
pub struct RateLimiter {
    settings: Arc<Settings>,
    counters: Arc<Counters>,
}

/// Shared by clones, so that cloning a limiter per request costs two reference counts.
#[derive(Clone)]
struct Settings {
    policy: Policy,
    client: Option<Client>,
    on_error: OnError,
    name: Cow<'static, str>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("RateLimiter")
            .field("name", &s.name)
            .field("algorithm", &s.policy.algorithm)
            .field("limit", &s.policy.limit)
            .field("window", &s.policy.window())
            .field("on_error", &s.on_error)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    fn new(algorithm: Algorithm, limit: u64, window: Duration, burst: u64) -> Self {
        let policy = Policy::new(algorithm, limit, window, burst);
        RateLimiter {
            settings: Arc::new(Settings {
                name: Cow::Owned(format!(
                    "{algorithm} {} per {:?}",
                    policy.limit,
                    policy.window()
                )),
                policy,
                client: None,
                on_error: OnError::Allow,
            }),
            counters: Arc::new(Counters::new()),
        }
    }

    /// At most `limit` units in any interval of length `window`, exactly: a log of admitted
    /// calls in a sorted set, one member per call whatever its cost. Memory grows with the
    /// number of calls admitted in a window, never with their cost.
    ///
    /// Never panics: out-of-range values are clamped (see [Limits](Self#limits)).
    ///
    /// ```
    /// let limiter = redis_patterns::rate_limit::RateLimiter::sliding_window(100, std::time::Duration::from_secs(60));
    /// assert_eq!(limiter.limit(), 100);
    /// ```
    pub fn sliding_window(limit: u64, window: Duration) -> Self {
        Self::new(Algorithm::SlidingWindow, limit, window, limit)
    }

    /// At most `limit` units per window of the clock (windows start at multiples of `window`
    /// on the server clock). One counter; up to `2 × limit` across a window edge.
    ///
    /// Never panics: out-of-range values are clamped (see [Limits](Self#limits)).
    ///
    /// ```
    /// let limiter = redis_patterns::rate_limit::RateLimiter::fixed_window(100, std::time::Duration::from_secs(60));
    /// assert_eq!(limiter.algorithm(), redis_patterns::rate_limit::Algorithm::FixedWindow);
    /// ```
    pub fn fixed_window(limit: u64, window: Duration) -> Self {
        Self::new(Algorithm::FixedWindow, limit, window, limit)
    }

    /// About `limit` units per sliding `window`, estimated from two fixed-window counters
    /// (the previous window's weighted by its overlap). O(1) memory per key.
    ///
    /// Never panics: out-of-range values are clamped (see [Limits](Self#limits)).
    ///
    /// ```
    /// let limiter = redis_patterns::rate_limit::RateLimiter::sliding_window_counter(100, std::time::Duration::from_secs(60));
    /// assert_eq!(limiter.window(), std::time::Duration::from_secs(60));
    /// ```
    pub fn sliding_window_counter(limit: u64, window: Duration) -> Self {
        Self::new(Algorithm::SlidingWindowCounter, limit, window, limit)
    }

    /// A bucket of `burst` tokens, full at first, refilled at `limit` per `window` (one token
    /// every `window / limit`); a call takes `cost` tokens.
    ///
    /// Never panics: out-of-range values are clamped (see [Limits](Self#limits)).
    ///
    /// ```
    /// let limiter = redis_patterns::rate_limit::RateLimiter::token_bucket(10, std::time::Duration::from_secs(1), 20);
    /// assert_eq!(limiter.burst(), 20);
    /// ```
    pub fn token_bucket(limit: u64, window: Duration, burst: u64) -> Self {
        Self::new(Algorithm::TokenBucket, limit, window, burst)
    }

    /// GCRA: `limit` per `window`, evenly spaced, with up to `burst` at once from idle. The
    /// outputs match redis-cell's `CL.THROTTLE` with `max_burst = burst - 1`.
    ///
    /// Never panics: out-of-range values are clamped (see [Limits](Self#limits)).
    ///
    /// ```
    /// let limiter = redis_patterns::rate_limit::RateLimiter::gcra(100, std::time::Duration::from_secs(60), 10);
    /// assert_eq!((limiter.limit(), limiter.burst()), (100, 10));
    /// ```
    pub fn gcra(limit: u64, window: Duration, burst: u64) -> Self {
        Self::new(Algorithm::Gcra, limit, window, burst)
    }

    /// Uses `client` (and its namespace) instead of the process-wide default client.
    pub fn client(mut self, client: Client) -> Self {
        Arc::make_mut(&mut self.settings).client = Some(client);
        self
    }

    /// What [`admit`](Self::admit) does when the backend fails; [`OnError::Allow`] by default.
    ///
    /// ```
    /// use redis_patterns::rate_limit::{OnError, RateLimiter};
    /// let strict = RateLimiter::fixed_window(5, std::time::Duration::from_secs(60)).on_error(OnError::Deny);
    /// ```
    pub fn on_error(mut self, policy: OnError) -> Self {
        Arc::make_mut(&mut self.settings).on_error = policy;
        self
    }

    /// The name in [`RateLimited`] errors and logs (default: the algorithm and limit, such as
    /// `"sliding_window 100 per 60s"`). It should not contain personal data.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        Arc::make_mut(&mut self.settings).name = name.into();
        self
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.settings.policy.algorithm
    }

    /// Units per window.
    pub fn limit(&self) -> u64 {
        self.settings.policy.limit
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.settings.policy.window()
    }

    /// The capacity of `token_bucket` and `gcra` (the `limit` for the other algorithms).
    pub fn burst(&self) -> u64 {
        self.settings.policy.burst
    }

    fn resolved_client(&self) -> &Client {
        match &self.settings.client {
            Some(client) => client,
            None => Client::default_client(),
        }
    }

    /// The backend key base of `key`: `ns:{…}`, each `:`-separated segment escaped.
    fn base(&self, key: &str) -> String {
        crate::key::name_key(self.resolved_client().namespace(), key)
    }

    /// Takes `cost` units for `key` if they are available, in one atomic step, and says
    /// what was decided. A denied call consumes nothing. Backend failures are returned.
    ///
    /// `cost = 0` only reads the state (and is always allowed).
    pub async fn check(&self, key: &str, cost: u64) -> Result<Decision> {
        let client = self.resolved_client();
        let outcome = ops::take(
            &client.inner().backend,
            &self.base(key),
            &self.settings.policy,
            cost,
        )
        .await
        .inspect_err(|_| self.counters.count(Event::BackendError))?;
        let event = if outcome.decision.allowed {
            Event::Allowed
        } else {
            Event::Denied
        };
        self.counters.count(event);
        Ok(outcome.decision)
    }

    /// Like [`check`](Self::check), but a denial is an error, so that `?` turns it into the
    /// caller's error type; and a backend failure follows the [`on_error`](Self::on_error)
    /// policy: with [`OnError::Allow`] the call is admitted and `Ok(None)` says that no
    /// decision was made.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use redis_patterns::Client;
    /// use redis_patterns::rate_limit::RateLimiter;
    ///
    /// let limiter = RateLimiter::token_bucket(1, Duration::from_secs(60), 3).client(Client::new("mem://")?);
    /// let decision = limiter.admit("export:alice", 3).await?; // three tokens at once
    /// assert_eq!(decision.map(|d| d.remaining), Some(0));
    /// assert!(limiter.admit("export:alice", 1).await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn admit(&self, key: &str, cost: u64) -> Result<Option<Decision>, RateLimited> {
        let client = self.resolved_client();
        let sink = Sink::Limiter {
            counters: &self.counters,
            name: &self.settings.name,
        };
        let admission = enforce(
            &client.inner().backend,
            &self.base(key),
            &self.settings.policy,
            cost,
            self.settings.on_error,
            &sink,
        )
        .await?;
        sink.count(Event::Allowed);
        Ok(admission.map(|taken| taken.decision))
    }

    /// Counters of this limiter and its clones.
    pub fn stats(&self) -> RateLimitStats {
        self.counters.snapshot()
    }
}

/// Where a decision is counted, and the name it is reported under.
enum Sink<'a> {
    Limiter {
        counters: &'a Counters,
        name: &'a Cow<'static, str>,
    },
    Template(&'static TemplateCounters),
}

impl Sink<'_> {
    fn count(&self, event: Event) {
        match self {
            Sink::Limiter { counters, .. } => counters.count(event),
            Sink::Template(t) => t.count(event),
        }
    }

    fn name(&self) -> Cow<'static, str> {
        match self {
            Sink::Limiter { name, .. } => (*name).clone(),
            Sink::Template(t) => Cow::Borrowed(t.name()),
        }
    }

    /// One limit's decision: `rate_limit_decisions_total{limiter, result, reason}`, and the
    /// `outcome` of the current `rate_limit` span when it denies.
    fn decided(&self, decided: Decided) {
        let labels: &'static [(&str, &str)] = match decided {
            Decided::Within => &[("result", "allowed"), ("reason", "within_limit")],
            Decided::OverLimit => &[("result", "denied"), ("reason", "limit")],
            Decided::AllowedOnError => &[("result", "allowed"), ("reason", "backend_error")],
            Decided::DeniedOnError => &[("result", "denied"), ("reason", "backend_error")],
        };
        let metric = Metric::with("rate_limit_decisions_total", labels);
        match self {
            Sink::Limiter { name, .. } => observe::count(metric, "limiter", name),
            Sink::Template(t) => observe::count(metric, "limiter", &Cow::Borrowed(t.name())),
        }
        if matches!(decided, Decided::OverLimit | Decided::DeniedOnError) {
            tracing::Span::current().record("outcome", "denied");
        }
    }
}

/// What one limit decided, and why: within the limit, over it, or by the `on_error` policy
/// because the backend failed.
#[derive(Debug, Clone, Copy)]
enum Decided {
    Within,
    OverLimit,
    AllowedOnError,
    DeniedOnError,
}

/// One take under a failure policy: `Ok(Some)` admitted, `Ok(None)` admitted because the
/// backend failed and the policy allows, `Err` denied. Counts denials and failures.
async fn enforce(
    backend: &Backend,
    base: &str,
    policy: &Policy,
    cost: u64,
    on_error: OnError,
    sink: &Sink<'_>,
) -> Result<Option<Outcome>, RateLimited> {
    match ops::take(backend, base, policy, cost).await {
        Ok(outcome) if outcome.decision.allowed => {
            sink.decided(Decided::Within);
            Ok(Some(outcome))
        }
        Ok(denied) => {
            sink.count(Event::Denied);
            sink.decided(Decided::OverLimit);
            Err(RateLimited::exceeded(sink.name(), &denied.decision))
        }
        Err(error) => {
            sink.count(Event::BackendError);
            let name = sink.name();
            match on_error {
                OnError::Allow => {
                    sink.decided(Decided::AllowedOnError);
                    tracing::warn!(
                        target: "redis_patterns",
                        rate_limit = &*name,
                        %error,
                        "rate limit could not be checked; admitting the call (on_error = allow)"
                    );
                    Ok(None)
                }
                OnError::Deny => {
                    sink.decided(Decided::DeniedOnError);
                    tracing::warn!(
                        target: "redis_patterns",
                        rate_limit = &*name,
                        %error,
                        "rate limit could not be checked; denying the call (on_error = deny)"
                    );
                    Err(RateLimited::unavailable(name, policy.limit, &error))
                }
            }
        }
    }
}
