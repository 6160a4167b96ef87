//! `examples/observability.rs` driven over real HTTP on loopback against a real redis-server:
//! after a miss, a hit, a denial and a lock wait, `/metrics` (Prometheus text) has the series
//! the README lists, labelled by key template.

mod common;

#[allow(dead_code)]
#[path = "../examples/observability.rs"]
mod example;

use std::collections::BTreeMap;
use std::time::Duration;

use redis_patterns::{Client, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One `GET` over a fresh connection: the status code and the body.
async fn get(port: u16, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the example");
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A Prometheus sample: the metric's name and labels, and its value.
type Series = BTreeMap<(String, BTreeMap<String, String>), f64>;

/// Parses Prometheus text (no escapes in the values this test looks for).
fn parse(text: &str) -> Series {
    let mut series = Series::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (head, value) = line.rsplit_once(' ').expect("name and value");
        let (name, labels) = match head.split_once('{') {
            Some((name, labels)) => (name, labels.trim_end_matches('}')),
            None => (head, ""),
        };
        let labels = labels
            .split("\",")
            .filter(|l| !l.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').expect("label=value");
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect();
        series.insert((name.to_owned(), labels), value.parse().expect("a number"));
    }
    series
}

fn value(series: &Series, name: &str, labels: &[(&str, &str)]) -> f64 {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    series
        .get(&(name.to_owned(), labels.clone()))
        .copied()
        .unwrap_or_else(|| {
            let known: Vec<_> = series.keys().filter(|(n, _)| n == name).collect();
            panic!("no series {name}{labels:?}; {name} has {known:?}")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_reports_a_hit_a_miss_a_denial_and_a_lock_wait() {
    let metrics = example::install_recorder();
    let ns = common::namespace("observability");
    let client = Client::new(
        Config::from_url(&common::server().url())
            .unwrap()
            .namespace(&ns)
            .command_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(example::serve(
        listener,
        example::AppState { client, metrics },
    ));

    assert_eq!(
        get(port, "/product/7").await,
        (200, "product 7\n".to_owned())
    );
    assert_eq!(get(port, "/product/7").await.0, 200);
    let statuses: Vec<u16> = futures::future::join_all((0..7).map(|_| get(port, "/quote")))
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        2,
        "{statuses:?}"
    );
    let (first, second) = tokio::join!(get(port, "/pay/7"), get(port, "/pay/7"));
    assert_eq!(
        (first.0, second.0),
        (200, 200),
        "the second waited for the first"
    );

    let (status, text) = get(port, "/metrics").await;
    assert_eq!(status, 200);
    let series = parse(&text);
    let cache = |result, tier| {
        value(
            &series,
            "cache_gets_total",
            &[
                ("cache", "product:<id>"),
                ("result", result),
                ("tier", tier),
            ],
        )
    };
    assert_eq!(cache("miss", "remote"), 1.0);
    assert_eq!(cache("hit", "remote"), 1.0);
    assert_eq!(
        value(
            &series,
            "cache_computations_total",
            &[("cache", "product:<id>")]
        ),
        1.0
    );
    assert_eq!(
        value(&series, "cache_puts_total", &[("cache", "product:<id>")]),
        1.0
    );
    let decisions = |result, reason| {
        value(
            &series,
            "rate_limit_decisions_total",
            &[("limiter", "quote"), ("result", result), ("reason", reason)],
        )
    };
    assert_eq!(decisions("allowed", "within_limit"), 5.0);
    assert_eq!(decisions("denied", "limit"), 2.0);
    let lock = [("lock", "payment:<order_id>")];
    assert_eq!(
        value(
            &series,
            "lock_acquisitions_total",
            &[("lock", "payment:<order_id>"), ("result", "acquired")]
        ),
        2.0
    );
    assert_eq!(value(&series, "lock_contended_total", &lock), 1.0);
    assert_eq!(value(&series, "lock_wait_seconds_count", &lock), 2.0);
    // One of the two waited for the other's 200 ms.
    assert!(value(&series, "lock_wait_seconds_sum", &lock) >= 0.15);
    let duration = |pattern, name| {
        value(
            &series,
            "redis_patterns_operation_duration_seconds_count",
            &[("pattern", pattern), ("name", name)],
        )
    };
    assert_eq!(duration("cache", "product:<id>"), 2.0);
    assert_eq!(duration("rate_limit", "quote"), 7.0);
    assert_eq!(duration("lock", "payment:<order_id>"), 2.0);
}
