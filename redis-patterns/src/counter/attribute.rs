//! What `#[counted]` expands to: [`counted`] counts a call in the current window of the
//! attribute's windowed counter, alongside the function's body or, with `on_error = "fail"`,
//! before it.

use std::future::Future;
use std::time::{Duration, Instant};

use super::ops::{Expiry, IncrBy};
use super::stats::{Event, TemplateCounters};
use crate::client::Client;
use crate::error::Error;
use crate::util::observe;
use crate::util::window::Windows;

/// What a `#[counted]` function does when its call cannot be counted (Redis unreachable,
/// slow or failing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Run the function anyway; the call is logged and counted in
    /// [`CounterStats::backend_errors`](super::CounterStats::backend_errors), not in the
    /// counter. The default: a count is rarely worth failing a request for.
    Ignore,
    /// Return the error (converted into the function's error type) without running the
    /// function: for counts that must not be missed (a quota, billing).
    Fail,
}

/// One `#[counted]` attribute: its counter's windows, its policy and its stats.
#[doc(hidden)]
pub struct CountSpec {
    window: Duration,
    keep: u32,
    on_error: OnError,
    counters: TemplateCounters,
}

impl CountSpec {
    pub const fn new(name: &'static str, window: Duration, keep: u32, on_error: OnError) -> Self {
        CountSpec {
            window,
            keep,
            on_error,
            counters: TemplateCounters::new(name),
        }
    }
}

/// The return type of a `#[counted(on_error = "fail")]` function.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a #[counted(on_error = \"fail\")] function must return `Result<T, E>` where `E: From<redis_patterns::Error>`, not `{Self}`",
    label = "a call that could not be counted returns the backend's error through this type",
    note = "implement `From<redis_patterns::Error>` for your error type, or leave `on_error` at \"ignore\""
)]
pub trait CountedReturn {
    fn from_error(error: Error) -> Self;
}

impl<T, E: From<Error>> CountedReturn for Result<T, E> {
    fn from_error(error: Error) -> Self {
        Err(E::from(error))
    }
}

/// Checks the return type where the attribute's return type is written, and hands the
/// conversion to [`counted`].
#[doc(hidden)]
pub fn check_counted_return<R: CountedReturn>() -> fn(Error) -> R {
    R::from_error
}

/// Counts the call under `key` (`ns:{views:#home}`) and runs `body`: both at once with
/// [`OnError::Ignore`] (the call takes the longer of the two, not their sum), or the count
/// first with [`OnError::Fail`], whose failure returns `from_error(error)` without running the
/// body (`None` with `Ignore`: any return type).
#[doc(hidden)]
pub async fn counted<R, F>(
    client: &Client,
    spec: &'static CountSpec,
    key: String,
    from_error: Option<fn(Error) -> R>,
    body: F,
) -> R
where
    F: Future<Output = R>,
{
    let started = observe::TIMING.then(Instant::now);
    let count = count(client, spec, &key);
    let out = match (spec.on_error, from_error) {
        (OnError::Fail, Some(from_error)) => match count.await {
            Ok(()) => body.await,
            Err(error) => from_error(error),
        },
        _ => {
            let (_, out) = tokio::join!(count, body);
            out
        }
    };
    if let Some(started) = started {
        spec.counters.duration(started.elapsed());
    }
    out
}

async fn count(client: &Client, spec: &'static CountSpec, base: &str) -> Result<(), Error> {
    let windows = Windows::new(spec.window, spec.keep);
    let current = windows.current();
    let key = windows.key(base, "count", current);
    let op = IncrBy {
        key: &key,
        by: 1,
        expiry: Expiry::At(windows.expires_at(current)),
    };
    match client.backend().exec(&op).await {
        Ok(_) => {
            spec.counters.count(Event::Incremented);
            Ok(())
        }
        Err(error) => {
            spec.counters.count(Event::BackendError);
            tracing::warn!(
                target: "redis_patterns",
                counter = spec.counters.name(),
                %error,
                on_error = ?spec.on_error,
                "a #[counted] call could not be counted",
            );
            Err(error)
        }
    }
}
