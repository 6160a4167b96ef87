//! The `metrics` feature, asserted with `metrics-util`'s debugging recorder on a real
//! redis-server: every pattern's counters and histograms, by name and labels, labelled by the
//! key template and never by a rendered key.

mod common;

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use redis_patterns::lock::LockError;
use redis_patterns::rate_limit::RateLimited;
use redis_patterns::{Client, cached, counted, rate_limited, with_lock};

/// A series: its name and its labels, sorted.
type Series = (String, Vec<(String, String)>);

/// What the tests of this binary recorded so far. The recorder's snapshots drain counters and
/// histograms, and the tests run in parallel, so every snapshot is added up here and each test
/// looks at its own templates. One lock covers taking a snapshot and adding it up: otherwise a
/// test could read the sums while another holds a drained snapshot not yet added.
struct Recorded {
    snapshotter: Snapshotter,
    sums: Mutex<Sums>,
}

#[derive(Default)]
struct Sums {
    counters: HashMap<Series, u64>,
    histograms: HashMap<Series, Vec<f64>>,
}

static RECORDED: LazyLock<Recorded> = LazyLock::new(|| {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this binary");
    Recorded {
        snapshotter,
        sums: Mutex::default(),
    }
});

impl Recorded {
    /// Adds up a new snapshot, and answers the sums, locked.
    fn collect(&self) -> std::sync::MutexGuard<'_, Sums> {
        let mut sums = self.sums.lock().unwrap();
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let key = key.key();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            let series = (key.name().to_owned(), labels);
            match value {
                DebugValue::Counter(n) => *sums.counters.entry(series).or_default() += n,
                DebugValue::Histogram(values) => sums
                    .histograms
                    .entry(series)
                    .or_default()
                    .extend(values.into_iter().map(|v| v.into_inner())),
                DebugValue::Gauge(_) => {}
            }
        }
        sums
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let sums = self.collect();
        sums.counters
            .get(&series(name, labels))
            .copied()
            .unwrap_or(0)
    }

    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        let sums = self.collect();
        sums.histograms
            .get(&series(name, labels))
            .cloned()
            .unwrap_or_default()
    }

    /// Every series of any name carrying label `label = value`.
    fn labelled(&self, label: &str, value: &str) -> Vec<Series> {
        let sums = self.collect();
        let has = |s: &Series| s.1.iter().any(|(k, v)| k == label && v == value);
        sums.counters
            .keys()
            .chain(sums.histograms.keys())
            .filter(|s| has(s))
            .cloned()
            .collect()
    }
}

fn series(name: &str, labels: &[(&str, &str)]) -> Series {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    (name.to_owned(), labels)
}

fn client(test: &str) -> Client {
    LazyLock::force(&RECORDED);
    common::client(common::Kind::Redis, test)
}

/// A client whose server is gone: every command fails at once (connection refused).
fn dead_client(test: &str) -> Client {
    LazyLock::force(&RECORDED);
    let server = common::RedisServer::start();
    let url = server.url();
    server.stop();
    common::client_at(&url, test, Duration::from_millis(200))
}

#[cached(key = "m-product:<id>", ttl = "300ms", stale_if_error = "1h", client = client, skip(fail))]
async fn product(client: &Client, id: u64, fail: bool) -> Result<u64, String> {
    if fail {
        Err("origin down".into())
    } else {
        Ok(id)
    }
}

#[cached(key = "m-near:<id>", ttl = "1m", near = "1m", client = client)]
async fn near(client: &Client, id: u64) -> u64 {
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_gets_are_counted_by_result_and_tier_with_the_other_cache_events() {
    let client = client("metrics-cache");
    let gets = |result, tier| {
        RECORDED.counter(
            "cache_gets_total",
            &[
                ("cache", "m-product:<id>"),
                ("result", result),
                ("tier", tier),
            ],
        )
    };
    let cache = [("cache", "m-product:<id>")];
    product(&client, 1, false).await.unwrap();
    product(&client, 1, false).await.unwrap();
    assert_eq!((gets("miss", "remote"), gets("hit", "remote")), (1, 1));
    assert_eq!(RECORDED.counter("cache_computations_total", &cache), 1);
    assert_eq!(RECORDED.counter("cache_puts_total", &cache), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(product(&client, 1, true).await, Ok(1), "stale");
    assert_eq!(
        RECORDED.counter(
            "cache_stale_served_total",
            &[("cache", "m-product:<id>"), ("reason", "error")]
        ),
        1
    );
    assert!(product_invalidate(&client, 1).await.unwrap());
    assert_eq!(RECORDED.counter("cache_evictions_total", &cache), 1);
    let durations = RECORDED.histogram(
        "redis_patterns_operation_duration_seconds",
        &[("pattern", "cache"), ("name", "m-product:<id>")],
    );
    assert_eq!(durations.len(), 3);
    assert!(
        durations.iter().all(|d| *d > 0.0 && *d < 10.0),
        "{durations:?}"
    );

    // The near tier: a miss there, then (once tracking covers the key) hits without Redis.
    let near_gets = |result| {
        RECORDED.counter(
            "cache_gets_total",
            &[
                ("cache", "m-near:<id>"),
                ("result", result),
                ("tier", "near"),
            ],
        )
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while near_gets("hit") == 0 {
        near(&client, 1).await;
        assert!(tokio::time::Instant::now() < deadline, "no near hit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(near_gets("miss") >= 1);

    // Labelled by template: no series names a rendered key.
    assert!(RECORDED.labelled("cache", "m-product:#1").is_empty());

    // Redis down: the call fails open and the error is counted.
    let dead = dead_client("metrics-cache-dead");
    assert_eq!(product(&dead, 2, false).await, Ok(2));
    assert!(RECORDED.counter("cache_errors_total", &cache) >= 1);
}

#[rate_limited(key = "m-api:<user>", limit = 2, window = "1m", client = client)]
async fn api(client: &Client, user: &str) -> Result<(), RateLimited> {
    let _ = user;
    Ok(())
}

#[rate_limited(key = "m-strict:<user>", limit = 2, window = "1m", on_error = "deny", client = client)]
async fn strict(client: &Client, user: &str) -> Result<(), RateLimited> {
    let _ = user;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_decisions_are_counted_by_result_and_reason() {
    let client = client("metrics-rate");
    for _ in 0..3 {
        let _ = api(&client, "alice").await;
    }
    let decisions = |limiter, result, reason| {
        RECORDED.counter(
            "rate_limit_decisions_total",
            &[("limiter", limiter), ("result", result), ("reason", reason)],
        )
    };
    assert_eq!(decisions("m-api:<user>", "allowed", "within_limit"), 2);
    assert_eq!(decisions("m-api:<user>", "denied", "limit"), 1);
    let dead = dead_client("metrics-rate-dead");
    assert!(
        api(&dead, "bob").await.is_ok(),
        "on_error = allow (the default)"
    );
    assert!(strict(&dead, "bob").await.is_err(), "on_error = deny");
    assert_eq!(decisions("m-api:<user>", "allowed", "backend_error"), 1);
    assert_eq!(decisions("m-strict:<user>", "denied", "backend_error"), 1);
    assert_eq!(
        RECORDED.counter("rate_limit_errors_total", &[("limiter", "m-api:<user>")]),
        1
    );
    let durations = RECORDED.histogram(
        "redis_patterns_operation_duration_seconds",
        &[("pattern", "rate_limit"), ("name", "m-api:<user>")],
    );
    assert_eq!(durations.len(), 4);
}

#[counted(key = "m-views:<page>", window = "1h", client = client)]
async fn views(client: &Client, page: &str) -> usize {
    page.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counted_calls_and_uncounted_ones_are_counted() {
    let client = client("metrics-counted");
    for _ in 0..3 {
        views(&client, "home").await;
    }
    let template = [("counter", "m-views:<page>")];
    assert_eq!(RECORDED.counter("counter_increments_total", &template), 3);
    let dead = dead_client("metrics-counted-dead");
    assert_eq!(
        views(&dead, "home").await,
        4,
        "on_error = ignore (the default)"
    );
    assert_eq!(RECORDED.counter("counter_errors_total", &template), 1);
    assert_eq!(RECORDED.counter("counter_increments_total", &template), 3);
    let durations = RECORDED.histogram(
        "redis_patterns_operation_duration_seconds",
        &[("pattern", "counter"), ("name", "m-views:<page>")],
    );
    assert_eq!(durations.len(), 4);
}

#[with_lock(key = "m-pay:<id>", ttl = "5s", wait = "2s", client = client)]
async fn pay(client: &Client, id: u64, hold: Duration) -> Result<(), LockError> {
    let _ = id;
    tokio::time::sleep(hold).await;
    Ok(())
}

#[with_lock(key = "m-short:<id>", ttl = "200ms", wait = 0, extend = false, client = client)]
async fn short(client: &Client, id: u64) -> Result<(), LockError> {
    let _ = id;
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_acquisitions_waits_and_lease_losses_are_recorded() {
    let client = client("metrics-lock");
    let hold = Duration::from_millis(200);
    let (a, b) = tokio::join!(pay(&client, 1, hold), pay(&client, 1, hold));
    assert!(a.is_ok() && b.is_ok());
    let lock = [("lock", "m-pay:<id>")];
    assert_eq!(
        RECORDED.counter(
            "lock_acquisitions_total",
            &[("lock", "m-pay:<id>"), ("result", "acquired")]
        ),
        2
    );
    assert_eq!(RECORDED.counter("lock_contended_total", &lock), 1);
    let waits = RECORDED.histogram("lock_wait_seconds", &lock);
    assert_eq!(waits.len(), 2);
    assert!(
        waits.iter().any(|w| *w >= 0.15),
        "one waited for the other: {waits:?}"
    );

    // A fixed 200 ms lease held for a second is lost; a second caller with `wait = 0` meanwhile
    // times out.
    let (first, second) = tokio::join!(short(&client, 1), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        short(&client, 1).await
    });
    assert!(matches!(first, Err(LockError::Lost)), "{first:?}");
    assert!(
        matches!(second, Err(LockError::Timeout { .. })),
        "{second:?}"
    );
    let short_lock = [("lock", "m-short:<id>")];
    assert_eq!(RECORDED.counter("lock_lease_losses_total", &short_lock), 1);
    assert_eq!(
        RECORDED.counter(
            "lock_acquisitions_total",
            &[("lock", "m-short:<id>"), ("result", "timeout")]
        ),
        1
    );
}

/// Waits until `done` holds, for at most 10 s.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_consumers_count_their_events_and_time_their_handlers() {
    use redis_patterns::stream::{Consumer, Delivery, EventStream};
    let client = client("metrics-consumer");
    let orders = EventStream::<u64>::new("m-orders").client(client.clone());
    let consumer = Consumer::new("m-orders", "billing", |n: u64, _: Delivery| async move {
        if n == 0 {
            Err("order 0 is empty")
        } else {
            Ok(())
        }
    })
    .client(client.clone())
    .max_deliveries(2)
    .retry_backoff(Duration::from_millis(10))
    .spawn()
    .unwrap();
    for n in [1, 2, 0] {
        orders.append(&n).await.unwrap();
    }
    let events = |event| {
        RECORDED.counter(
            "stream_consumer_events_total",
            &[
                ("stream", "m-orders"),
                ("group", "billing"),
                ("event", event),
            ],
        )
    };
    until("two handled, one dead-lettered", || {
        events("handled") == 2 && events("dead_lettered") == 1 && events("acked") == 2
    })
    .await;
    assert_eq!((events("failed"), events("retried")), (2, 1));
    let stats = consumer.shutdown().await;
    assert_eq!(
        (stats.handled, stats.failed, stats.dead_lettered),
        (2, 2, 1)
    );
    let runs = RECORDED.histogram(
        "stream_consumer_handler_seconds",
        &[("stream", "m-orders"), ("group", "billing")],
    );
    assert_eq!(
        runs.len(),
        4,
        "two successes and the poison's two deliveries"
    );
    assert!(runs.iter().all(|s| *s >= 0.0 && *s < 10.0), "{runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_workers_count_their_jobs_and_time_their_handlers() {
    use redis_patterns::queue::{Job, Queue, Worker};
    let client = client("metrics-worker");
    let mail = Queue::<u64>::new("m-mail").client(client.clone());
    let worker = Worker::new("m-mail", |n: u64, _: Job| async move {
        if n == 0 { Err("bounced") } else { Ok(()) }
    })
    .client(client.clone())
    .max_attempts(2)
    .retry_backoff(Duration::from_millis(10))
    .spawn()
    .unwrap();
    for n in [1, 2, 0] {
        mail.push(&n).await.unwrap();
    }
    let jobs =
        |event| RECORDED.counter("queue_jobs_total", &[("queue", "m-mail"), ("event", event)]);
    until("two completed, one dead", || {
        jobs("completed") == 2 && jobs("dead") == 1
    })
    .await;
    assert_eq!((jobs("failed"), jobs("retried")), (2, 1));
    let stats = worker.shutdown().await;
    assert_eq!((stats.completed, stats.failed, stats.dead), (2, 2, 1));
    let runs = RECORDED.histogram("queue_handler_seconds", &[("queue", "m-mail")]);
    assert_eq!(runs.len(), 4, "two successes and the poison's two attempts");
}
