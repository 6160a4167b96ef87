//! Counters under faults: `#[counted]` applies `on_error` (run uncounted, or fail without
//! running) within the timeouts, the counter types return typed errors, nothing is left without
//! a TTL, and counting resumes once the fault is gone.

use std::sync::Mutex;
use std::time::Duration;

use redis_patterns::counter::{Counter, UniqueCounter, WindowedCounter};
use redis_patterns::{Client, counted};
use tokio::time::Instant;

use crate::bounded;
use crate::common::{self, RedisServer, proxy::FaultProxy};

/// The pages and accounts whose bodies ran (each test uses names of its own).
static RAN: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn runs(name: &str) -> usize {
    RAN.lock().unwrap().iter().filter(|n| *n == name).count()
}

#[counted(key = "visits:<page>", window = "1h", client = client)]
async fn visit(client: &Client, page: &str) -> String {
    RAN.lock().unwrap().push(page.to_owned());
    page.to_owned()
}

#[counted(key = "charges:<account>", window = "1h", on_error = "fail", client = client)]
async fn charge(client: &Client, account: &str) -> Result<(), redis_patterns::Error> {
    RAN.lock().unwrap().push(account.to_owned());
    Ok(())
}

const CONNECT: Duration = Duration::from_millis(400);
const COMMAND: Duration = Duration::from_millis(250);

/// One counted call while Redis misbehaves: dialling, plus one transaction bounded by the
/// command timeout, plus scheduling.
fn call_bound() -> Duration {
    CONNECT + COMMAND + Duration::from_millis(500)
}

fn client_of(url: &str, ns: &str) -> Client {
    crate::client_with(url, ns, CONNECT, COMMAND)
}

/// Every counter operation fails with a typed error, and `#[counted]` applies its policy,
/// each within the bound.
async fn every_operation_fails_within_the_bound(client: &Client, fault: &str) {
    let (page, account) = (format!("page-{fault}"), format!("account-{fault}"));
    let before = (runs(&page), runs(&account));
    let started = Instant::now();
    assert_eq!(
        bounded(Duration::from_secs(5), visit(client, &page)).await,
        page
    );
    let charged = bounded(Duration::from_secs(5), charge(client, &account)).await;
    assert!(
        charged.is_err(),
        "{fault}: an uncounted charge ran: {charged:?}"
    );
    let counter = Counter::new(Duration::from_secs(60)).client(client.clone());
    assert!(counter.incr("c:x").await.is_err(), "{fault}");
    let windowed = WindowedCounter::hourly(2).client(client.clone());
    assert!(windowed.sum("c:x", 2).await.is_err(), "{fault}");
    let unique = UniqueCounter::daily(2).client(client.clone());
    assert!(unique.add("u:x", "a").await.is_err(), "{fault}");
    let waited = started.elapsed();
    assert!(
        waited <= 5 * call_bound(),
        "{fault}: five operations waited {waited:?}"
    );
    assert_eq!(
        (runs(&page), runs(&account)),
        (before.0 + 1, before.1),
        "{fault}: `ignore` ran the body, `fail` did not"
    );
}

/// Counting works again within the recovery bound (connect + 2 × command + 1 s).
async fn counts_again(client: &Client, page: &str) {
    let lifted = Instant::now();
    let visits = WindowedCounter::hourly(2).client(client.clone());
    let name = format!("visits:{page}");
    loop {
        visit(client, page).await;
        if visits.sum(&name, 2).await.is_ok_and(|n| n > 0) {
            break;
        }
        assert!(
            lifted.elapsed() < CONNECT + 2 * COMMAND + Duration::from_secs(1),
            "counting did not resume"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(charge(client, &format!("account-{page}")).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_apply_on_error_while_the_server_is_down_and_resume_after_a_restart() {
    let server = RedisServer::start();
    let ns = common::namespace("counter-down");
    let client = client_of(&server.url(), &ns);
    visit(&client, "warm").await;
    server.stop();
    // Twice: the first meets a dead connection, the second an open breaker.
    for _ in 0..2 {
        every_operation_fails_within_the_bound(&client, "server down").await;
    }
    let errors = redis_patterns::counter::stats_by_template()
        .into_iter()
        .find(|(template, _)| *template == "visits:<page>")
        .map(|(_, stats)| stats.backend_errors);
    assert!(
        errors.is_some_and(|n| n >= 2),
        "uncounted calls: {errors:?}"
    );
    server.restart();
    counts_again(&client, "after-restart").await;
    assert_eq!(server.keys_without_ttl(&ns), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_fail_within_the_bound_on_a_slow_network_and_recover() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let ns = common::namespace("counter-slow");
    let client = client_of(&proxy.url(), &ns);
    visit(&client, "warm").await;
    proxy.delay(Duration::from_secs(2), Duration::ZERO);
    every_operation_fails_within_the_bound(&client, "slow network").await;
    proxy.pass();
    counts_again(&client, "after-delay").await;
    assert_eq!(server.keys_without_ttl(&ns), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_increment_refused_for_memory_leaves_nothing_behind() {
    let server = RedisServer::start();
    let ns = common::namespace("counter-oom");
    let client = client_of(&server.url(), &ns);
    let counter = Counter::new(Duration::from_secs(60)).client(client.clone());
    counter.incr("c:before").await.unwrap();
    server.out_of_memory(true);
    // The transaction is refused whole: neither the increment nor a key without its expiry.
    assert!(counter.incr("c:during").await.is_err());
    assert!(
        UniqueCounter::daily(2)
            .client(client.clone())
            .add("u:during", "a")
            .await
            .is_err()
    );
    assert!(charge(&client, "oom").await.is_err());
    server.out_of_memory(false);
    assert_eq!(counter.get("c:during").await.unwrap(), 0);
    assert_eq!(counter.incr("c:before").await.unwrap(), 2);
    assert_eq!(server.keys(&ns).len(), 1, "{:?}", server.keys(&ns));
    assert_eq!(server.keys_without_ttl(&ns), Vec::<String>::new());
}
