//! What the patterns report outside the process: metrics on the `metrics` facade (feature
//! `metrics`; every function here is empty without it) and the names of their tracing spans.
//!
//! Every metric is labelled by its attribute's key template (`cache = "product:<id>"`), never
//! by a rendered key, so that the number of series stays that of the attributes. Each pattern
//! maps its events to metrics in its `stats.rs` (`metric()`); an attribute's keys are built once
//! (`util/counters.rs`), so that its events cost no allocation. Rate-limit decisions (labelled
//! with their reason, and reported for `RateLimiter`s by name too) and lock waits go through
//! [`count`] and [`seconds`], the `metrics` macros, which build their labels on every call.

use std::borrow::Cow;
use std::time::Duration;

/// One counter a pattern event increments: its name and up to two labels besides the
/// template's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
pub struct Metric {
    pub(crate) name: &'static str,
    pub(crate) labels: &'static [(&'static str, &'static str)],
}

impl Metric {
    pub(crate) const fn new(name: &'static str) -> Self {
        Metric { name, labels: &[] }
    }

    pub(crate) const fn with(
        name: &'static str,
        labels: &'static [(&'static str, &'static str)],
    ) -> Self {
        Metric { name, labels }
    }
}

/// Increments `metric`, labelled `template_label = template`.
#[inline]
#[allow(
    clippy::ptr_arg,
    reason = "a borrowed `Cow` becomes the label without copying, and an owned one is copied only with the feature on"
)]
pub(crate) fn count(metric: Metric, template_label: &'static str, template: &Cow<'static, str>) {
    #[cfg(feature = "metrics")]
    {
        let template = metrics::SharedString::from(template.clone());
        let counter = match metric.labels {
            [] => metrics::counter!(metric.name, template_label => template),
            [(k, v)] => metrics::counter!(metric.name, template_label => template, *k => *v),
            [(k1, v1), (k2, v2), ..] => {
                metrics::counter!(metric.name, template_label => template, *k1 => *v1, *k2 => *v2)
            }
        };
        counter.increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (metric, template_label, template);
}

/// The histogram of whole calls' durations, labelled `pattern` and `name` (the template).
#[cfg(feature = "metrics")]
pub(crate) const DURATION: &str = "redis_patterns_operation_duration_seconds";

/// A histogram of seconds labelled `label = name` (`lock_wait_seconds{lock}`).
#[inline]
pub(crate) fn seconds(
    metric: &'static str,
    label: &'static str,
    name: &'static str,
    took: Duration,
) {
    #[cfg(feature = "metrics")]
    metrics::histogram!(metric, label => name).record(took.as_secs_f64());
    #[cfg(not(feature = "metrics"))]
    let _ = (metric, label, name, took);
}

/// Whether calls are timed for the duration histograms: only with the `metrics` feature, so
/// that without it a call reads no clock for them.
pub(crate) const TIMING: bool = cfg!(feature = "metrics");
