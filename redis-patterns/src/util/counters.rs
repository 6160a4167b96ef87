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
}

impl<E: Events> Registered<E> {
    /// The counters of the attribute with key template `name`.
    pub const fn new(name: &'static str) -> Self {
        Registered {
            name,
            counters: Counters::new(),
            registered: AtomicBool::new(false),
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
    }
}

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
