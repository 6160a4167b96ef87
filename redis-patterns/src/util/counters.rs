//! The one counters mechanism of every pattern: a pattern lists its events (an enum
//! implementing [`Events`]) and its snapshot type; [`Counters`] counts them per client or per
//! object, [`Registered`] per attribute (listed in a [`Registry`] on first use, so that
//! `stats_by_…` functions can report every attribute by its key template).
//!
//! Redis's `INFO stats` only knows server-wide figures, so per-pattern ones are counted here:
//! one relaxed atomic increment per event, no lock on the hot path.

use std::marker::PhantomData;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The most events a pattern may define.
const MAX_EVENTS: usize = 16;

/// The events one pattern counts, and the snapshot it reports them in.
#[doc(hidden)]
pub trait Events: Copy + 'static {
    /// The public snapshot (`CacheStats`, `RateLimitStats`, …).
    type Stats;

    /// Where the pattern's attributes list their counters.
    const REGISTRY: &'static Registry<Self>;

    /// The event's slot, below [`MAX_EVENTS`] (the enum's discriminant).
    fn index(self) -> usize;

    /// The snapshot, reading each event's count through `count`.
    fn stats(count: impl Fn(Self) -> u64) -> Self::Stats;

    /// Every event, in index order (for the metrics' keys).
    const ALL: &'static [Self];

    /// The pattern, as the `pattern` label of the duration histogram and the name of the
    /// template label of its counters (`cache`, `limiter`, `lock`).
    const PATTERN: &'static str;
    const TEMPLATE_LABEL: &'static str;

    /// The counter the event increments (feature `metrics`), if it is one of its own.
    fn metric(self) -> Option<crate::util::observe::Metric>;
}

/// One relaxed atomic per event of `E`.
#[doc(hidden)]
pub struct Counters<E> {
    counts: [AtomicU64; MAX_EVENTS],
    events: PhantomData<fn(E)>,
}

impl<E: Events> Counters<E> {
    pub(crate) const fn new() -> Self {
        Counters {
            counts: [const { AtomicU64::new(0) }; MAX_EVENTS],
            events: PhantomData,
        }
    }

    #[inline]
    pub(crate) fn count(&self, event: E) {
        if let Some(count) = self.counts.get(event.index()) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts `n` events at once (a batch).
    #[inline]
    pub(crate) fn count_many(&self, event: E, n: u64) {
        if let Some(count) = self.counts.get(event.index()) {
            count.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn get(&self, event: E) -> u64 {
        self.counts
            .get(event.index())
            .map_or(0, |count| count.load(Ordering::Relaxed))
    }

    pub(crate) fn snapshot(&self) -> E::Stats {
        E::stats(|event| self.get(event))
    }
}

impl<E: Events> Default for Counters<E> {
    fn default() -> Self {
        Self::new()
    }
}

/// The counters of one attribute (one `#[cached]` function, one `#[rate_limited]` template,
/// one `#[with_lock]`), a `static` in the generated code, listed in its registry on first use.
#[doc(hidden)]
pub struct Registered<E> {
    name: &'static str,
    counters: Counters<E>,
    registered: AtomicBool,
    /// Feature `metrics`: each event's metric key with this template's label, then the
    /// duration histogram's, built on first use so that an event costs no allocation.
    #[cfg(feature = "metrics")]
    metric_keys: std::sync::OnceLock<Box<[Option<metrics::Key>]>>,
}

impl<E: Events> Registered<E> {
    /// The counters of the attribute with key template `name`.
    pub const fn new(name: &'static str) -> Self {
        Registered {
            name,
            counters: Counters::new(),
            registered: AtomicBool::new(false),
            #[cfg(feature = "metrics")]
            metric_keys: std::sync::OnceLock::new(),
        }
    }

    /// The attribute's key template, which it is reported under.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    #[inline]
    pub(crate) fn count(&'static self, event: E) {
        if !self.registered.load(Ordering::Relaxed)
            && !self.registered.swap(true, Ordering::Relaxed)
        {
            crate::util::lock(&E::REGISTRY.0).push(self);
        }
        self.counters.count(event);
        #[cfg(feature = "metrics")]
        if let Some(Some(key)) = self.metric_keys().get(event.index()) {
            metrics::with_recorder(|r| r.register_counter(key, &METADATA).increment(1));
        }
    }

    /// Records how long one call of this attribute took (feature `metrics`:
    /// `redis_patterns_operation_duration_seconds{pattern, name}`).
    #[inline]
    pub(crate) fn duration(&self, took: std::time::Duration) {
        #[cfg(feature = "metrics")]
        if let Some(Some(key)) = self.metric_keys().last() {
            metrics::with_recorder(|r| {
                r.register_histogram(key, &METADATA)
                    .record(took.as_secs_f64())
            });
        }
        #[cfg(not(feature = "metrics"))]
        let _ = took;
    }

    #[cfg(feature = "metrics")]
    fn metric_keys(&self) -> &[Option<metrics::Key>] {
        self.metric_keys.get_or_init(|| {
            let label = |k: &'static str, v: &'static str| metrics::Label::from_static_parts(k, v);
            let mut keys: Vec<Option<metrics::Key>> = E::ALL
                .iter()
                .map(|event| {
                    let metric = event.metric()?;
                    let labels = std::iter::once(label(E::TEMPLATE_LABEL, self.name))
                        .chain(metric.labels.iter().map(|(k, v)| label(k, v)))
                        .collect::<Vec<_>>();
                    Some(metrics::Key::from_parts(metric.name, labels))
                })
                .collect();
            keys.push(Some(metrics::Key::from_parts(
                crate::util::observe::DURATION,
                vec![label("pattern", E::PATTERN), label("name", self.name)],
            )));
            keys.into_boxed_slice()
        })
    }
}

/// The counters of one running object (a stream consumer, a queue worker), reported as
/// metrics too (feature `metrics`): each event increments its [`Events::metric`] labelled
/// with the object's names, and [`timed`](Reported::timed) handler runs are recorded in a
/// histogram of seconds with the same labels.
#[doc(hidden)]
pub struct Reported<E> {
    counters: Counters<E>,
    /// Feature `metrics`: each event's key, then the handler histogram's.
    #[cfg(feature = "metrics")]
    keys: Box<[Option<metrics::Key>]>,
}

impl<E: Events> Reported<E> {
    /// Counters labelled `labels` (`stream = "orders"`, `group = "billing"`), whose handler
    /// runs go to the histogram `handler_seconds`.
    pub(crate) fn new(labels: &[(&'static str, &str)], handler_seconds: &'static str) -> Self {
        #[cfg(feature = "metrics")]
        let keys = {
            let labels: Vec<metrics::Label> = labels
                .iter()
                .map(|(k, v)| metrics::Label::new(*k, (*v).to_owned()))
                .collect();
            let mut keys: Vec<Option<metrics::Key>> = E::ALL
                .iter()
                .map(|event| {
                    let metric = event.metric()?;
                    let own = metric
                        .labels
                        .iter()
                        .map(|(k, v)| metrics::Label::from_static_parts(k, v));
                    let labels: Vec<metrics::Label> = labels.iter().cloned().chain(own).collect();
                    Some(metrics::Key::from_parts(metric.name, labels))
                })
                .collect();
            keys.push(Some(metrics::Key::from_parts(handler_seconds, labels)));
            keys.into_boxed_slice()
        };
        #[cfg(not(feature = "metrics"))]
        let _ = (labels, handler_seconds);
        Reported {
            counters: Counters::new(),
            #[cfg(feature = "metrics")]
            keys,
        }
    }

    #[inline]
    pub(crate) fn count(&self, event: E) {
        self.count_many(event, 1);
    }

    /// Counts `n` events at once (a batch).
    #[inline]
    pub(crate) fn count_many(&self, event: E, n: u64) {
        self.counters.count_many(event, n);
        #[cfg(feature = "metrics")]
        if let Some(Some(key)) = self.keys.get(event.index()) {
            metrics::with_recorder(|r| r.register_counter(key, &METADATA).increment(n));
        }
    }

    /// Runs a handler, recording how long it took (feature `metrics`; without it, no clock
    /// is read).
    pub(crate) async fn timed<R>(&self, run: impl std::future::Future<Output = R>) -> R {
        if !crate::util::observe::TIMING {
            return run.await;
        }
        let started = std::time::Instant::now();
        let ret = run.await;
        #[cfg(feature = "metrics")]
        if let Some(Some(key)) = self.keys.last() {
            let took = started.elapsed().as_secs_f64();
            metrics::with_recorder(|r| r.register_histogram(key, &METADATA).record(took));
        }
        #[cfg(not(feature = "metrics"))]
        let _ = started;
        ret
    }

    pub(crate) fn snapshot(&self) -> E::Stats {
        self.counters.snapshot()
    }
}

/// What the patterns' metrics are registered with.
#[cfg(feature = "metrics")]
static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new("redis_patterns", metrics::Level::INFO, Some(module_path!()));

/// Every [`Registered`] of one pattern used so far in this process.
#[doc(hidden)]
pub struct Registry<E: 'static>(Mutex<Vec<&'static Registered<E>>>);

impl<E: Events> Registry<E> {
    pub(crate) const fn new() -> Self {
        Registry(Mutex::new(Vec::new()))
    }

    /// A snapshot per key template, in order of first use. Attributes sharing a template
    /// (`#[cached]`, its companions, `#[cache_put]`, `#[cache_evict]`) add up.
    pub(crate) fn snapshots(&'static self) -> Vec<(&'static str, E::Stats)> {
        let mut totals: Vec<(&'static str, [u64; MAX_EVENTS])> = Vec::new();
        for registered in crate::util::lock(&self.0).iter() {
            let i = match totals.iter().position(|(name, _)| *name == registered.name) {
                Some(i) => i,
                None => {
                    totals.push((registered.name, [0; MAX_EVENTS]));
                    totals.len() - 1
                }
            };
            for (total, count) in totals[i].1.iter_mut().zip(&registered.counters.counts) {
                *total = total.saturating_add(count.load(Ordering::Relaxed));
            }
        }
        totals
            .into_iter()
            .map(|(name, counts)| {
                let stats = E::stats(|event| counts.get(event.index()).copied().unwrap_or(0));
                (name, stats)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy)]
    enum Event {
        A,
        B,
    }

    static REGISTRY: Registry<Event> = Registry::new();

    impl Events for Event {
        type Stats = (u64, u64);
        const REGISTRY: &'static Registry<Self> = &REGISTRY;
        fn index(self) -> usize {
            self as usize
        }
        fn stats(count: impl Fn(Self) -> u64) -> (u64, u64) {
            (count(Event::A), count(Event::B))
        }
        const ALL: &'static [Self] = &[Event::A, Event::B];
        const PATTERN: &'static str = "test";
        const TEMPLATE_LABEL: &'static str = "test";
        fn metric(self) -> Option<crate::util::observe::Metric> {
            None
        }
    }

    fn listed_in_index_order<E: Events>() {
        assert!(E::ALL.len() <= MAX_EVENTS);
        for (i, event) in E::ALL.iter().enumerate() {
            assert_eq!(event.index(), i, "{}'s events", E::PATTERN);
        }
    }

    /// The metrics' keys are looked up by an event's index in `ALL`.
    #[test]
    fn every_pattern_lists_all_its_events_in_index_order() {
        listed_in_index_order::<crate::cache::Event>();
        listed_in_index_order::<crate::lock::stats::Event>();
        listed_in_index_order::<crate::rate_limit::stats::Event>();
        listed_in_index_order::<crate::counter::stats::Event>();
        listed_in_index_order::<crate::leaderboard::stats::Event>();
        listed_in_index_order::<crate::session::stats::Event>();
        listed_in_index_order::<crate::stream::stats::Event>();
        listed_in_index_order::<crate::queue::stats::Event>();
    }

    #[test]
    fn counts_per_event() {
        let counters = Counters::<Event>::new();
        counters.count(Event::A);
        counters.count(Event::B);
        counters.count(Event::B);
        assert_eq!(counters.snapshot(), (1, 2));
    }

    #[test]
    fn registered_counters_add_up_per_name_in_order_of_first_use() {
        static FIRST: Registered<Event> = Registered::new("b:<x>");
        static SECOND: Registered<Event> = Registered::new("a:<y>");
        static SAME_AS_FIRST: Registered<Event> = Registered::new("b:<x>");
        assert!(REGISTRY.snapshots().is_empty(), "nothing used yet");
        FIRST.count(Event::A);
        SECOND.count(Event::B);
        SAME_AS_FIRST.count(Event::A);
        SAME_AS_FIRST.count(Event::B);
        assert_eq!(
            REGISTRY.snapshots(),
            vec![("b:<x>", (2, 1)), ("a:<y>", (0, 1))]
        );
    }
}
