//! [`WindowedCounter`]: a count per window of the clock (per minute, hour, day), each window
//! kept for a number of windows, and sums over the latest ones.

use std::fmt;
use std::time::{Duration, SystemTime};

use super::ops::{Expiry, IncrBy, Read};
use super::stats::Event;
use super::{CounterStats, Handle};
use crate::client::Client;
use crate::error::Result;
use crate::util::window::Windows;

/// A count per window of the clock, for each name: `views.incr("views:home")` counts in the
/// current window (say, today), `views.sum("views:home", 7)` adds up the last seven. Cheap to
/// clone; clones share their stats.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redis_patterns::Error> {
/// use redis_patterns::Client;
/// use redis_patterns::counter::WindowedCounter;
///
/// let client = Client::new("mem://")?;
/// // A count per day (UTC), each day kept for 30 days.
/// let views = WindowedCounter::daily(30).client(client);
/// views.incr("views:home").await?;
/// assert_eq!(views.incr_by("views:home", 2).await?, 3, "today's count");
/// assert_eq!(views.get("views:home").await?, 3);
/// assert_eq!(views.sum("views:home", 7).await?, 3, "today and the 6 days before");
/// let days = views.windows("views:home", 7).await?;
/// assert_eq!(days.len(), 7);
/// assert_eq!(days[0].count, 3, "newest first");
/// # Ok(()) }
/// ```
///
/// Windows are aligned on the Unix epoch (a day starts at 00:00 UTC) and read on the caller's
/// clock. Window `i` of a counter is a key of its own that expires when `keep` windows have
/// started after it began, so the latest `keep` windows (the current one included) can be
/// read. A window below 1 ms is 1 ms; `keep` is clamped to 1 ..= [`MAX_KEEP`](super::MAX_KEEP).
#[derive(Clone)]
pub struct WindowedCounter {
    windows: Windows,
    handle: Handle,
}

/// One window of a [`WindowedCounter`]: when it began, and its count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Window {
    /// When the window began (a multiple of the window's width since the Unix epoch).
    pub start: SystemTime,
    /// Its count (0 for a window nothing was counted in).
    pub count: i64,
}

impl fmt::Debug for WindowedCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowedCounter")
            .field("window", &self.windows.width())
            .field("keep", &self.windows.keep())
            .finish_non_exhaustive()
    }
}

impl WindowedCounter {
    /// A count per `window`, each kept until `keep` windows have started after it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = redis_patterns::counter::WindowedCounter::new(Duration::from_secs(300), 12);
    /// assert_eq!((c.window(), c.keep()), (Duration::from_secs(300), 12));
    /// ```
    pub fn new(window: Duration, keep: u32) -> Self {
        WindowedCounter {
            windows: Windows::new(window, keep),
            handle: Handle::default(),
        }
    }

    /// A count per minute, each kept for `keep` minutes.
    pub fn per_minute(keep: u32) -> Self {
        Self::new(Duration::from_secs(60), keep)
    }

    /// A count per hour, each kept for `keep` hours.
    pub fn hourly(keep: u32) -> Self {
        Self::new(Duration::from_secs(3600), keep)
    }

    /// A count per day (UTC), each kept for `keep` days.
    pub fn daily(keep: u32) -> Self {
        Self::new(Duration::from_secs(86_400), keep)
    }

    /// Uses `client` (and its namespace) instead of the process-wide default client.
    pub fn client(mut self, client: Client) -> Self {
        self.handle.client = Some(client);
        self
    }

    /// The width of a window.
    pub fn window(&self) -> Duration {
        self.windows.width()
    }

    /// How many windows are kept, the current one included.
    pub fn keep(&self) -> u32 {
        self.windows.keep()
    }

    /// Adds 1 to `name`'s current window, and answers the window's count.
    pub async fn incr(&self, name: &str) -> Result<i64> {
        self.incr_by(name, 1).await
    }

    /// Adds `by` to `name`'s current window, and answers the window's count.
    pub async fn incr_by(&self, name: &str, by: i64) -> Result<i64> {
        let current = self.windows.current();
        let key = self.windows.key(&self.handle.base(name), "count", current);
        let op = IncrBy {
            key: &key,
            by,
            expiry: Expiry::At(self.windows.expires_at(current)),
        };
        self.handle.exec(&op, Event::Incremented).await
    }

    /// The count of `name`'s current window.
    pub async fn get(&self, name: &str) -> Result<i64> {
        self.sum(name, 1).await
    }

    /// The sum of `name`'s latest `last` windows, the current one included (`last` is clamped
    /// to 1 ..= [`keep`](Self::keep)). One `MGET`.
    pub async fn sum(&self, name: &str, last: u32) -> Result<i64> {
        let windows = self.windows(name, last).await?;
        Ok(windows
            .iter()
            .fold(0i64, |sum, window| sum.saturating_add(window.count)))
    }

    /// `name`'s latest `last` windows, newest (the current one) first (`last` is clamped to
    /// 1 ..= [`keep`](Self::keep)). One `MGET`.
    pub async fn windows(&self, name: &str, last: u32) -> Result<Vec<Window>> {
        let base = self.handle.base(name);
        let (indices, keys): (Vec<u64>, Vec<String>) = self
            .windows
            .last(&base, "count", self.windows.current(), last)
            .into_iter()
            .unzip();
        let counts = self.handle.exec(&Read { keys: &keys }, Event::Read).await?;
        Ok(indices
            .into_iter()
            .zip(counts)
            .map(|(index, count)| Window {
                start: self.windows.start(index),
                count,
            })
            .collect())
    }

    /// Activity of this counter and its clones.
    pub fn stats(&self) -> CounterStats {
        self.handle.counters.snapshot()
    }
}
