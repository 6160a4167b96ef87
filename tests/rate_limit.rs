//! `RateLimiter`: the five algorithms on a real redis-server and on `mem://`, exact under
//! concurrency, on the backend's clock, with TTLs, hash tags, costs and the failure policy.
//! Each test runs on both backends (`on_redis::…`, `on_memory::…`).

mod common;

use std::time::Duration;

use common::{Kind, RedisServer};
use redis_patterns::rate_limit::{Algorithm, DenyReason, OnError, RateLimiter};
use redis_patterns::test_util::Store;
use redis_patterns::{Client, Config};

const ALGORITHMS: [Algorithm; 5] = [
    Algorithm::FixedWindow,
    Algorithm::SlidingWindow,
    Algorithm::SlidingWindowCounter,
    Algorithm::TokenBucket,
    Algorithm::Gcra,
];

/// `limit` per `window`, with `burst = limit` where the algorithm has one.
fn limiter(algorithm: Algorithm, limit: u64, window: Duration) -> RateLimiter {
    match algorithm {
        Algorithm::FixedWindow => RateLimiter::fixed_window(limit, window),
        Algorithm::SlidingWindow => RateLimiter::sliding_window(limit, window),
        Algorithm::SlidingWindowCounter => RateLimiter::sliding_window_counter(limit, window),
        Algorithm::TokenBucket => RateLimiter::token_bucket(limit, window, limit),
        Algorithm::Gcra => RateLimiter::gcra(limit, window, limit),
        other => panic!("unknown algorithm {other}"),
    }
}

/// A window that neither ends (fixed windows start at multiples of it on the clock) nor
/// refills noticeably during a test.
const LONG: Duration = Duration::from_secs(1000 * 86_400);

/// The state key of `key` under `limiter`, as the runtime names it.
fn state_key(client: &Client, key: &str, algorithm: Algorithm, window: Duration) -> String {
    let suffix = match algorithm {
        Algorithm::FixedWindow => "fw2",
        Algorithm::SlidingWindow => "sw2",
        Algorithm::SlidingWindowCounter => "swc",
        Algorithm::TokenBucket => "tb2",
        _ => "gcra",
    };
    format!(
        "{}:{{{key}}}:{suffix}:{}",
        client.namespace().unwrap(),
        window.as_millis()
    )
}

async fn exactly_the_limit_is_admitted_across_8_clients_and_400_concurrent_calls(kind: Kind) {
    for algorithm in ALGORITHMS {
        let ns = common::namespace(&format!("exact-{algorithm}"));
        let clients = common::clients(kind, &ns, 8);
        let mut tasks = Vec::new();
        for client in &clients {
            let limiter = limiter(algorithm, 100, LONG).client(client.clone());
            for _ in 0..50 {
                let limiter = limiter.clone();
                tasks.push(tokio::spawn(async move {
                    limiter.check("api:alice", 1).await.unwrap().allowed
                }));
            }
        }
        let mut admitted = 0;
        for task in tasks {
            admitted += u32::from(task.await.unwrap());
        }
        assert_eq!(admitted, 100, "{algorithm} on {kind:?}");
    }
}

async fn no_window_of_a_sliding_window_log_holds_more_than_the_limit(kind: Kind) {
    let window = Duration::from_millis(300);
    let limit = 5;
    let ns = common::namespace("sliding-property");
    let mut tasks = Vec::new();
    for client in common::clients(kind, &ns, 4) {
        let limiter = RateLimiter::sliding_window(limit, window).client(client);
        tasks.push(tokio::spawn(async move {
            let mut admitted = Vec::new();
            let mut pause = 0;
            let deadline = tokio::time::Instant::now() + Duration::from_millis(1200);
            while tokio::time::Instant::now() < deadline {
                let d = limiter.check("upload:bob", 1).await.unwrap();
                if d.allowed {
                    admitted.push(d.at);
                }
                pause = (pause + 7) % 15;
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            admitted
        }));
    }
    let mut at = Vec::new();
    for task in tasks {
        at.extend(task.await.unwrap());
    }
    at.sort();
    assert!(
        at.len() as u64 >= 3 * limit,
        "the test admitted too little to mean anything: {}",
        at.len()
    );
    for (i, later) in at.iter().enumerate().skip(limit as usize) {
        let first = at[i - limit as usize];
        assert!(
            *later - first >= window,
            "{} admissions within {:?} (server clock {first:?}..={later:?})",
            limit + 1,
            *later - first
        );
    }
}

async fn a_denied_call_is_admitted_once_retry_after_has_elapsed(kind: Kind) {
    for algorithm in ALGORITHMS {
        let client = common::client(kind, &format!("refill-{algorithm}"));
        let limiter = limiter(algorithm, 2, Duration::from_millis(200)).client(client);
        let mut denied = None;
        for _ in 0..3 {
            let d = limiter.check("job:1", 1).await.unwrap();
            if !d.allowed {
                denied = Some(d);
                break;
            }
        }
        let denied = denied.unwrap_or_else(|| panic!("{algorithm}: the third call is denied"));
        assert!(
            denied.retry_after > Duration::ZERO && denied.retry_after <= Duration::from_millis(400),
            "{algorithm}: {denied:?}"
        );
        assert_eq!(denied.remaining, 0, "{algorithm}");
        tokio::time::sleep(denied.retry_after + Duration::from_millis(3)).await;
        let d = limiter.check("job:1", 1).await.unwrap();
        assert!(d.allowed, "{algorithm}: {d:?} after waiting {denied:?}");
    }
}

async fn the_limit_is_full_again_once_reset_after_has_elapsed(kind: Kind) {
    for algorithm in ALGORITHMS {
        let client = common::client(kind, &format!("reset-{algorithm}"));
        let limiter = limiter(algorithm, 3, Duration::from_millis(200)).client(client);
        let mut last = limiter.check("job:1", 2).await.unwrap();
        assert!(last.allowed, "{algorithm}");
        if algorithm == Algorithm::SlidingWindowCounter {
            // Its estimate counts the previous window too: wait for a fresh pair of windows.
            last = limiter.check("job:1", 0).await.unwrap();
        }
        tokio::time::sleep(last.reset_after + Duration::from_millis(3)).await;
        let d = limiter.check("job:1", 0).await.unwrap();
        assert_eq!(d.remaining, 3, "{algorithm}: {d:?} after {last:?}");
    }
}

async fn every_state_key_has_a_ttl_tied_to_the_window(kind: Kind) {
    let window = Duration::from_secs(10);
    for algorithm in ALGORITHMS {
        let client = common::client(kind, &format!("ttl-{algorithm}"));
        let limiter = limiter(algorithm, 10, window).client(client.clone());
        let decision = limiter.check("api:alice", 1).await.unwrap();
        assert!(decision.allowed);
        let key = state_key(&client, "api:#alice", algorithm, window);
        let ttl = Store::of(&client)
            .pttl(&key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{algorithm}: {key} has a TTL"));
        // Token bucket and GCRA keep their state until it is full again: one unit's refill.
        let bound = match algorithm {
            Algorithm::SlidingWindowCounter => 2 * window,
            Algorithm::TokenBucket | Algorithm::Gcra => window / 10,
            _ => window,
        };
        assert!(ttl <= bound, "{algorithm}: {ttl:?} > {bound:?}");
        // Nor shorter than the state is needed: a key that expired early would forget admitted
        // units and over-admit. (Millisecond TTLs and the time between the check and the PTTL
        // read allow a few ms of slack.)
        let needed = match algorithm {
            // The log must keep the unit for the whole window.
            Algorithm::SlidingWindow => window,
            // Until the limit is full again: the end of the fixed window; for the counter, the
            // end of the next window (the count is needed there as `previous`); for token
            // bucket and GCRA, the refill.
            _ => decision.reset_after,
        };
        assert!(
            ttl + Duration::from_millis(25) >= needed,
            "{algorithm}: the state expires after {ttl:?} but is needed for {needed:?}"
        );
    }
}

async fn a_cost_consumes_several_units_at_once(kind: Kind) {
    for algorithm in ALGORITHMS {
        let client = common::client(kind, &format!("cost-{algorithm}"));
        let limiter = limiter(algorithm, 10, LONG).client(client);
        let d = limiter.check("export:alice", 4).await.unwrap();
        assert!(d.allowed, "{algorithm}");
        assert_eq!((d.limit, d.remaining), (10, 6), "{algorithm}");
        let d = limiter.check("export:alice", 7).await.unwrap();
        assert!(!d.allowed, "{algorithm}: 7 > 6");
        assert_eq!(
            d.remaining, 6,
            "{algorithm}: a denied call consumes nothing"
        );
        let d = limiter.check("export:alice", 6).await.unwrap();
        assert!(d.allowed, "{algorithm}");
        assert_eq!(d.remaining, 0, "{algorithm}");
        let too_big = limiter.check("export:bob", 11).await.unwrap();
        assert!(!too_big.allowed, "{algorithm}: above the capacity");
        assert!(too_big.retry_after > Duration::ZERO, "{algorithm}");
    }
}

async fn gcra_reports_what_redis_cell_reports(kind: Kind) {
    let client = common::client(kind, "gcra-outputs");
    // One unit per second, five at once.
    let limiter = RateLimiter::gcra(60, Duration::from_secs(60), 5).client(client);
    let first = limiter.check("api:alice", 1).await.unwrap();
    assert!(first.allowed);
    assert_eq!((first.limit, first.remaining), (5, 4));
    assert_eq!(first.retry_after, Duration::ZERO);
    assert!(
        first.reset_after <= Duration::from_secs(1)
            && first.reset_after > Duration::from_millis(900)
    );
    for _ in 0..4 {
        assert!(limiter.check("api:alice", 1).await.unwrap().allowed);
    }
    let denied = limiter.check("api:alice", 1).await.unwrap();
    assert!(!denied.allowed);
    assert_eq!((denied.limit, denied.remaining), (5, 0));
    let near = |d: Duration, expected: Duration| {
        d <= expected && d > expected - Duration::from_millis(100)
    };
    assert!(
        near(denied.retry_after, Duration::from_secs(1)),
        "{denied:?}"
    );
    assert!(
        near(denied.reset_after, Duration::from_secs(5)),
        "{denied:?}"
    );
}

async fn state_keys_share_the_callers_hash_tag_and_escape_adversarial_keys(kind: Kind) {
    let client = common::client(kind, "adversarial");
    let limiter = RateLimiter::fixed_window(1, LONG).client(client.clone());
    let keys = [
        "a:b", "a%3Ab", "a}b", "a{b}", "*", "é", "a b", "a\nb", "", ":", "a:", "~", "%7E",
    ];
    for key in keys {
        let d = limiter.check(key, 1).await.unwrap();
        assert!(d.allowed, "{key:?} has a limit of its own");
    }
    for key in keys {
        assert!(!limiter.check(key, 1).await.unwrap().allowed, "{key:?}");
    }
    if kind == Kind::Redis {
        let mut conn = common::server().redis();
        let pattern = format!("{}:*", client.namespace().unwrap());
        let stored: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut conn).unwrap();
        assert_eq!(stored.len(), keys.len(), "{stored:?}");
        for key in stored {
            let open = key.find('{').unwrap();
            let close = key.rfind('}').unwrap();
            let tag = &key[open + 1..close];
            assert!(!tag.contains(['{', '}', '*', ' ', '\n']), "{key}");
            assert!(key[close..].starts_with("}:fw2:"), "{key}");
        }
    }
}

async fn keys_are_namespaced_and_limits_per_key_are_independent(kind: Kind) {
    let ns = common::namespace("independent");
    let clients = common::clients(kind, &ns, 1);
    let limiter = RateLimiter::sliding_window(1, LONG).client(clients[0].clone());
    assert!(limiter.check("api:alice", 1).await.unwrap().allowed);
    assert!(limiter.check("api:bob", 1).await.unwrap().allowed);
    assert!(!limiter.check("api:alice", 1).await.unwrap().allowed);
    let other_namespace = common::client(kind, "independent-other");
    let elsewhere = RateLimiter::sliding_window(1, LONG).client(other_namespace);
    assert!(elsewhere.check("api:alice", 1).await.unwrap().allowed);
    // Same key, other window: a limit of its own (stacked limits on one template).
    let hourly =
        RateLimiter::sliding_window(1, Duration::from_secs(3600)).client(clients[0].clone());
    assert!(hourly.check("api:alice", 1).await.unwrap().allowed);
}

async fn admit_turns_a_denial_into_a_rate_limited_error_and_counts(kind: Kind) {
    let client = common::client(kind, "admit");
    let limiter = RateLimiter::fixed_window(1, LONG)
        .name("reports")
        .client(client);
    let admitted = limiter.admit("reports:alice", 1).await.unwrap().unwrap();
    assert!(admitted.allowed);
    let denied = limiter.admit("reports:alice", 1).await.unwrap_err();
    assert_eq!(denied.reason, DenyReason::LimitExceeded);
    assert_eq!(
        (denied.name.as_ref(), denied.limit, denied.remaining),
        ("reports", 1, 0)
    );
    assert!(!denied.to_string().contains("alice"), "{denied}");
    let stats = limiter.stats();
    assert_eq!(
        (stats.allowed, stats.denied, stats.backend_errors),
        (1, 1, 0)
    );
}

async fn huge_costs_and_windows_are_denied_or_clamped_identically_never_overflowing(kind: Kind) {
    for algorithm in ALGORITHMS {
        let client = common::client(kind, &format!("huge-{algorithm}"));
        // A cost above the limit never fits, whatever its size (a `cost` expression may come
        // from user input).
        let ten = limiter(algorithm, 10, LONG).client(client.clone());
        for cost in [11, 1 << 40, u64::MAX] {
            let d = ten.check("k", cost).await.unwrap();
            assert!(
                !d.allowed,
                "{algorithm} admitted cost {cost} against a limit of 10"
            );
        }
        assert!(
            ten.check("k", 10).await.unwrap().allowed,
            "{algorithm}: nothing was taken"
        );
        // Windows beyond about 35 years are clamped rather than overflowing the arithmetic.
        let forever = limiter(algorithm, 5, Duration::MAX).client(client.clone());
        let admitted = {
            let mut n = 0;
            for _ in 0..7 {
                n += u32::from(forever.check("forever", 1).await.unwrap().allowed);
            }
            n
        };
        assert_eq!(admitted, 5, "{algorithm} with Duration::MAX");
    }
}

on_both_backends!(
    huge_costs_and_windows_are_denied_or_clamped_identically_never_overflowing,
    exactly_the_limit_is_admitted_across_8_clients_and_400_concurrent_calls,
    no_window_of_a_sliding_window_log_holds_more_than_the_limit,
    a_denied_call_is_admitted_once_retry_after_has_elapsed,
    the_limit_is_full_again_once_reset_after_has_elapsed,
    every_state_key_has_a_ttl_tied_to_the_window,
    a_cost_consumes_several_units_at_once,
    gcra_reports_what_redis_cell_reports,
    state_keys_share_the_callers_hash_tag_and_escape_adversarial_keys,
    keys_are_namespaced_and_limits_per_key_are_independent,
    admit_turns_a_denial_into_a_rate_limited_error_and_counts,
);

fn client_with_short_timeouts(url: &str) -> Client {
    let config = Config::from_url(url)
        .unwrap()
        .namespace(common::namespace("down"))
        .connect_timeout(Duration::from_millis(200))
        .command_timeout(Duration::from_millis(200))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200));
    Client::new(config).unwrap()
}

/// Fails the test instead of hanging if a call blocks far past the configured timeouts.
async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(3), f)
        .await
        .expect("a rate limit check hung past its timeouts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_server_stopped_allow_admits_and_deny_refuses_within_the_timeouts() {
    let server = RedisServer::start();
    let client = client_with_short_timeouts(&server.url());
    let open = RateLimiter::sliding_window(1, LONG).client(client.clone());
    let closed = RateLimiter::sliding_window(1, LONG)
        .on_error(OnError::Deny)
        .client(client.clone());
    assert!(bounded(open.admit("api:alice", 1)).await.unwrap().is_some());
    server.stop();
    for _ in 0..5 {
        assert_eq!(bounded(open.admit("api:alice", 1)).await, Ok(None));
        let denied = bounded(closed.admit("api:alice", 1)).await.unwrap_err();
        assert_eq!(denied.reason, DenyReason::BackendUnavailable);
        assert!(denied.retry_after > Duration::ZERO);
        assert!(bounded(open.check("api:alice", 1)).await.is_err());
    }
    assert_eq!(
        open.stats().backend_errors,
        10,
        "five admissions and five checks found the backend down"
    );
    assert_eq!(closed.stats().backend_errors, 5);
    server.restart();
    // The breaker lets a probe through after its backoff (at most 200 ms here).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut back = false;
    for _ in 0..20 {
        if let Ok(Some(d)) = bounded(closed.admit("api:carol", 1)).await {
            back = d.allowed;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back, "limits are checked again once the server is back");
}
