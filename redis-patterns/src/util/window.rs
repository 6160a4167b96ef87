//! Windows of the clock for windowed and unique counters and periodic leaderboards: which
//! window a moment falls in, each window's key, and when it expires.
//!
//! Windows are aligned on the Unix epoch (a day window starts at 00:00 UTC), or on an offset
//! from it (weeks start on Monday, the epoch being a Thursday), and read on the caller's clock: hosts a few milliseconds apart may count an event at a window's edge in
//! neighbouring windows, which no total notices. A window's key is kept until `keep` windows
//! have started after it began (`PEXPIREAT`, absolute, so every increment sets the same time).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The most windows a counter keeps (and a read may span: one `MGET` or `PFCOUNT` of as many
/// keys).
pub const MAX_KEEP: u32 = 10_000;

/// The shortest window: one millisecond.
const MIN_WIDTH_MS: u64 = 1;

/// The longest window: about 10,000 years (so that window starts never overflow).
const MAX_WIDTH_MS: u64 = 1 << 48;

/// A counter's windows: their width and how many are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Windows {
    width_ms: u64,
    /// Where windows start, after the epoch (below `width_ms`).
    offset_ms: u64,
    keep: u32,
}

impl Windows {
    /// `width` is clamped to 1 ms ..= 2^48 ms and `keep` to 1 ..= [`MAX_KEEP`].
    pub(crate) fn new(width: Duration, keep: u32) -> Self {
        Windows {
            width_ms: crate::util::whole_millis(width).clamp(MIN_WIDTH_MS, MAX_WIDTH_MS),
            offset_ms: 0,
            keep: keep.clamp(1, MAX_KEEP),
        }
    }

    /// Windows that start `offset` after the epoch's alignment (modulo the width).
    pub(crate) fn offset(mut self, offset: Duration) -> Self {
        self.offset_ms = crate::util::whole_millis(offset) % self.width_ms;
        self
    }

    pub(crate) fn width(&self) -> Duration {
        Duration::from_millis(self.width_ms)
    }

    pub(crate) fn keep(&self) -> u32 {
        self.keep
    }

    /// The index of the window that `now` (since the Unix epoch) falls in.
    pub(crate) fn index(&self, now: Duration) -> u64 {
        crate::util::whole_millis(now).saturating_sub(self.offset_ms) / self.width_ms
    }

    /// The index of the current window on this host's clock.
    pub(crate) fn current(&self) -> u64 {
        self.index(now())
    }

    /// When window `index` expires: once `keep` windows have started after it began.
    pub(crate) fn expires_at(&self, index: u64) -> Duration {
        Duration::from_millis(
            index
                .saturating_add(u64::from(self.keep))
                .saturating_mul(self.width_ms)
                .saturating_add(self.offset_ms),
        )
    }

    /// When window `index` began.
    pub(crate) fn start(&self, index: u64) -> SystemTime {
        UNIX_EPOCH
            + Duration::from_millis(
                index
                    .saturating_mul(self.width_ms)
                    .saturating_add(self.offset_ms),
            )
    }

    /// The key of window `index` of the counter `base` (`ns:{views:#home}`):
    /// `ns:{views:#home}:<kind>:<width in ms>:<index>`, in the counter's hash tag.
    pub(crate) fn key(&self, base: &str, kind: &str, index: u64) -> String {
        let mut key = String::with_capacity(base.len() + kind.len() + 40);
        key.push_str(base);
        key.push(':');
        key.push_str(kind);
        key.push(':');
        key.push_str(itoa::Buffer::new().format(self.width_ms));
        key.push(':');
        key.push_str(itoa::Buffer::new().format(index));
        key
    }

    /// The keys of the `last` windows up to `current` (at most `keep`, at least one), newest
    /// first, with their indices.
    pub(crate) fn last(
        &self,
        base: &str,
        kind: &str,
        current: u64,
        last: u32,
    ) -> Vec<(u64, String)> {
        let n = last.clamp(1, self.keep);
        (0..u64::from(n))
            .map_while(|back| current.checked_sub(back))
            .map(|index| (index, self.key(base, kind, index)))
            .collect()
    }
}

/// Time since the Unix epoch on this host's clock (zero before 1970).
pub(crate) fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned_on_the_epoch_and_expire_after_keep_windows() {
        let day = Windows::new(Duration::from_secs(86_400), 7);
        let noon = Duration::from_secs(20_000 * 86_400 + 43_200);
        assert_eq!(day.index(noon), 20_000);
        assert_eq!(
            day.start(20_000),
            UNIX_EPOCH + Duration::from_secs(20_000 * 86_400)
        );
        assert_eq!(day.expires_at(20_000), Duration::from_secs(20_007 * 86_400));
        assert_eq!(
            day.key("ns:{v:#a}", "count", 3),
            "ns:{v:#a}:count:86400000:3"
        );
    }

    #[test]
    fn reads_span_at_most_the_kept_windows_and_never_before_the_epoch() {
        let w = Windows::new(Duration::from_secs(60), 3);
        let keys: Vec<u64> = w
            .last("b", "count", 10, 100)
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        assert_eq!(keys, [10, 9, 8]);
        assert_eq!(w.last("b", "count", 1, 3).len(), 2);
        assert_eq!(
            w.last("b", "count", 10, 0).len(),
            1,
            "at least the current window"
        );
    }

    #[test]
    fn weeks_start_on_monday() {
        let week = Windows::new(Duration::from_secs(7 * 86_400), 4)
            .offset(Duration::from_secs(4 * 86_400));
        // 2026-11-30 is a Monday: 20,787 days after the epoch.
        let monday = Duration::from_secs(20_787 * 86_400);
        let index = week.index(monday);
        assert_eq!(week.start(index), UNIX_EPOCH + monday);
        assert_eq!(week.index(monday - Duration::from_millis(1)), index - 1);
        assert_eq!(
            week.expires_at(index),
            monday + Duration::from_secs(4 * 7 * 86_400)
        );
    }

    #[test]
    fn out_of_range_settings_are_clamped() {
        let w = Windows::new(Duration::ZERO, 0);
        assert_eq!((w.width(), w.keep()), (Duration::from_millis(1), 1));
        let w = Windows::new(Duration::MAX, u32::MAX);
        assert_eq!(w.keep(), MAX_KEEP);
        assert_eq!(w.expires_at(u64::MAX), Duration::from_millis(u64::MAX));
    }
}
