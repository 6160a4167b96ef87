//! Distributed locks (`Lock`, `#[with_lock]`, `Redlock`) on a real redis-server and on
//! `mem://`. Each `on_both_backends!` test runs as `on_redis::…` and `on_memory::…`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use common::{Kind, RedisServer};
use redis_patterns::lock::{Lock, LockError, Redlock, fencing_token, lease_lost};
use redis_patterns::test_util::Store;
use redis_patterns::{Client, with_lock};

#[derive(Debug)]
enum JobError {
    Lock(LockError),
    #[allow(dead_code)] // shown through Debug when an assertion fails
    Storage(redis_patterns::Error),
}

impl From<LockError> for JobError {
    fn from(e: LockError) -> Self {
        JobError::Lock(e)
    }
}

impl From<redis_patterns::Error> for JobError {
    fn from(e: redis_patterns::Error) -> Self {
        JobError::Storage(e)
    }
}

/// A non-atomic read-modify-write of a counter stored in the backend: GET, pause, SET.
#[with_lock(key = "counter:<name>", ttl = "5s", wait = "60s", retry = "2ms", client = client)]
async fn increment(client: &Client, name: &str) -> Result<(), JobError> {
    let store = Store::of(client);
    let key = format!("{}:counter-value:{name}", client.namespace().unwrap());
    let current: u64 = match store.get(&key).await? {
        Some(bytes) => std::str::from_utf8(&bytes).unwrap().parse().unwrap(),
        None => 0,
    };
    tokio::time::sleep(Duration::from_micros(500)).await;
    let next = (current + 1).to_string().into_bytes();
    store.set(&key, next, Duration::from_secs(600)).await?;
    Ok(())
}

async fn the_lock_makes_read_modify_write_exclusive_across_clients(kind: Kind) {
    let ns = common::namespace("mutual-exclusion");
    let clients = common::clients(kind, &ns, 4);
    let mut tasks = Vec::new();
    for client in &clients {
        for _ in 0..25 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    increment(&client, "shared").await.unwrap();
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let stored = Store::of(&clients[0])
        .get(&format!("{ns}:counter-value:shared"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        std::str::from_utf8(&stored).unwrap(),
        "1000",
        "4 clients x 25 tasks x 10 increments"
    );
}

async fn a_holder_whose_lease_expired_cannot_release_the_next_holders_lock(kind: Kind) {
    let client = common::client(kind, "release-safety");
    let first = Lock::new("job")
        .client(&client)
        .ttl(Duration::from_millis(100))
        .acquire()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = Lock::new("job")
        .client(&client)
        .ttl(Duration::from_secs(10))
        .acquire()
        .await
        .unwrap();
    assert!(matches!(first.release().await, Err(LockError::Lost)));
    // The second holder still holds it.
    let third = Lock::new("job").client(&client).acquire().await;
    assert!(matches!(third, Err(LockError::Timeout { .. })), "{third:?}");
    assert!(second.fencing_token().await.unwrap() > 0);
    second.release().await.unwrap();
}

async fn a_crashed_holder_is_replaced_after_its_ttl_with_a_greater_fencing_token(kind: Kind) {
    let client = common::client(kind, "crash");
    let crashed = Lock::new("job")
        .client(&client)
        .ttl(Duration::from_millis(300))
        .acquire()
        .await
        .unwrap();
    let crashed_token = crashed.fencing_token().await.unwrap();
    // A crash: the process is gone, nothing releases the lock.
    std::mem::forget(crashed);
    let next = Lock::new("job")
        .client(&client)
        .wait(Duration::from_secs(5))
        .acquire()
        .await
        .unwrap();
    assert!(next.fencing_token().await.unwrap() > crashed_token);
    next.release().await.unwrap();
}

async fn fencing_tokens_increase_strictly(kind: Kind) {
    let client = common::client(kind, "fencing");
    let mut last = 0;
    for _ in 0..20 {
        let guard = Lock::new("ledger").client(&client).acquire().await.unwrap();
        assert!(guard.fencing_token().await.unwrap() > last);
        last = guard.fencing_token().await.unwrap();
        guard.release().await.unwrap();
    }
}

#[with_lock(key = "ledger", ttl = "10s", fenced = true, client = client)]
async fn fenced_entry(client: &Client) -> Result<u64, JobError> {
    Ok(fencing_token().await?)
}

#[with_lock(key = "ledger", ttl = "10s", client = client)]
async fn entry(client: &Client) -> Result<u64, JobError> {
    Ok(fencing_token().await?)
}

/// Tokens issued with the grant (`fenced`) and on request come from one sequence: they
/// increase strictly across holders whichever way each got its token, and a fenced grant
/// writes the fencing key at once while an unfenced one writes nothing until asked.
async fn fenced_grants_and_tokens_on_request_share_one_sequence(kind: Kind) {
    let client = common::client(kind, "fenced");
    let store = Store::of(&client);
    let fence = format!("{}:{{ledger}}:fence", client.namespace().unwrap());
    let lock = Lock::new("ledger")
        .client(&client)
        .ttl(Duration::from_secs(10));
    let mut last = 0;
    let mut check = |token: u64, how: &str| {
        assert!(token > last, "{how}: token {token} after {last}");
        last = token;
    };
    for round in 0..3 {
        let guard = lock.clone().fenced(true).acquire().await.unwrap();
        let left = store.pttl(&fence).await.unwrap();
        assert!(
            left.is_some_and(|t| t > Duration::from_secs(9)),
            "round {round}: the fenced grant wrote the fencing key with the lease: {left:?}"
        );
        let token = guard.fencing_token().await.unwrap();
        assert_eq!(guard.fencing_token().await.unwrap(), token, "issued once");
        check(token, "a fenced grant");
        guard.release().await.unwrap();

        store.del(&fence).await.unwrap();
        let guard = lock.clone().acquire().await.unwrap();
        assert_eq!(
            store.pttl(&fence).await.unwrap(),
            None,
            "round {round}: an unfenced grant writes no fencing key"
        );
        check(guard.fencing_token().await.unwrap(), "a token on request");
        guard.release().await.unwrap();

        check(
            fenced_entry(&client).await.unwrap(),
            "#[with_lock(fenced = true)]",
        );
        check(entry(&client).await.unwrap(), "#[with_lock] on request");
    }
}

/// A holder whose lease ran out is issued no token: its writes must not pass the fence.
async fn a_holder_whose_lease_ran_out_gets_no_fencing_token(kind: Kind) {
    let client = common::client(kind, "fence-lost");
    let guard = Lock::new("ledger")
        .client(&client)
        .ttl(Duration::from_millis(100))
        .acquire()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let token = guard.fencing_token().await;
    assert!(matches!(token, Err(LockError::Lost)), "{token:?}");
    assert_eq!(client.lock_stats().lost, 1);
    assert!(matches!(fencing_token().await, Err(LockError::OutsideLock)));
}

#[with_lock(key = "long:<id>", ttl = "300ms", client = client)]
async fn long_job(client: &Client, id: u32, ran: &AtomicBool) -> Result<u64, JobError> {
    let _ = id;
    tokio::time::sleep(Duration::from_millis(900)).await;
    ran.store(true, Ordering::SeqCst);
    Ok(fencing_token().await?)
}

async fn a_body_running_three_ttls_keeps_the_lock_the_whole_time(kind: Kind) {
    let ns = common::namespace("extension");
    let clients = common::clients(kind, &ns, 2);
    let ran = Arc::new(AtomicBool::new(false));
    let job = {
        let (client, ran) = (clients[0].clone(), ran.clone());
        tokio::spawn(async move { long_job(&client, 1, &ran).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut attempts = 0;
    while !ran.load(Ordering::SeqCst) {
        let intruder = Lock::new("long:1").client(&clients[1]).acquire().await;
        // An attempt that began just before the body finished may get the lock once the body
        // released it: only a grant while the body still ran is a failure.
        assert!(
            matches!(intruder, Err(LockError::Timeout { .. })) || ran.load(Ordering::SeqCst),
            "another owner got in while the body ran: {intruder:?}"
        );
        attempts += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        attempts > 20,
        "the intruder kept trying during the whole body: {attempts}"
    );
    assert!(job.await.unwrap().unwrap() > 0);
}

#[with_lock(key = "fragile:<id>", ttl = "300ms", client = client)]
async fn fragile_job(client: &Client, id: u32, finished: &AtomicBool) -> Result<(), JobError> {
    let _ = id;
    tokio::time::sleep(Duration::from_secs(5)).await;
    finished.store(true, Ordering::SeqCst);
    Ok(())
}

async fn deleting_the_lock_from_outside_aborts_the_body_with_lost(kind: Kind) {
    let client = common::client(kind, "lease-loss");
    let finished = AtomicBool::new(false);
    let key = format!("{}:{{fragile:#1}}:mutex", client.namespace().unwrap());
    let call = fragile_job(&client, 1, &finished);
    let steal = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(
            Store::of(&client).del(&key).await.unwrap(),
            "the lock key exists"
        );
        tokio::time::Instant::now()
    };
    let (result, stolen_at) = tokio::join!(call, steal);
    assert!(
        matches!(result, Err(JobError::Lock(LockError::Lost))),
        "{result:?}"
    );
    assert!(!finished.load(Ordering::SeqCst), "the body was dropped");
    // Detected at the next renewal (every ttl / 3 = 100 ms), well before the body's 5 s.
    assert!(stolen_at.elapsed() < Duration::from_secs(2));
}

#[with_lock(key = "careful:<id>", ttl = "300ms", on_lost = "continue", client = client)]
async fn careful_job(client: &Client, id: u32) -> Result<bool, JobError> {
    let _ = id;
    tokio::time::sleep(Duration::from_millis(600)).await;
    Ok(lease_lost())
}

async fn on_lost_continue_lets_the_body_finish_and_tells_it(kind: Kind) {
    let client = common::client(kind, "on-lost-continue");
    let key = format!("{}:{{careful:#1}}:mutex", client.namespace().unwrap());
    let steal = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        Store::of(&client).del(&key).await.unwrap();
    };
    let (result, ()) = tokio::join!(careful_job(&client, 1), steal);
    assert!(result.unwrap(), "the body finished and saw the loss");
}

async fn dropping_the_call_releases_the_lock_promptly(kind: Kind) {
    let ns = common::namespace("cancellation");
    let clients = common::clients(kind, &ns, 2);
    let finished = AtomicBool::new(false);
    // ttl is 300 ms but renewed; the call is cancelled after 100 ms.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(100),
        fragile_job(&clients[0], 7, &finished),
    )
    .await;
    assert!(cancelled.is_err());
    let started = tokio::time::Instant::now();
    let next = Lock::new("fragile:7")
        .client(&clients[1])
        .wait(Duration::from_secs(5))
        .retry(Duration::from_millis(5))
        .acquire()
        .await
        .unwrap();
    next.release().await.unwrap();
    // Released by the dropped call (a background task), not by a lease running out.
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
}

async fn waiting_gives_up_with_timeout(kind: Kind) {
    let client = common::client(kind, "timeout");
    let held = Lock::new("busy").client(&client).acquire().await.unwrap();
    let err = Lock::new("busy")
        .client(&client)
        .wait(Duration::from_millis(150))
        .acquire()
        .await
        .unwrap_err();
    match err {
        LockError::Timeout { waited } => assert!(waited >= Duration::from_millis(150)),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(err_message_says_what_to_do());
    held.release().await.unwrap();
}

fn err_message_says_what_to_do() -> bool {
    let text = LockError::Timeout {
        waited: Duration::from_millis(1),
    }
    .to_string();
    text.contains("retry later") && text.contains("wait")
}

async fn adversarial_lock_names_stay_in_their_hash_tag(kind: Kind) {
    let client = common::client(kind, "adversarial-locks");
    let names = ["a", "a}", "a{", "a b", "a*", "a%7D", "é", "a:b"];
    let mut guards = Vec::new();
    for name in names {
        // Every name is a different lock: all can be held at once.
        guards.push(Lock::new(name).client(&client).acquire().await.unwrap());
    }
    let listing = format!("{guards:?}");
    assert!(
        !listing.contains("a b") && !listing.contains("a}}"),
        "{listing}"
    );
    for guard in guards {
        guard.release().await.unwrap();
    }
}

#[with_lock(key = "counted:<id>", ttl = "5s", client = client)]
async fn counted_job(client: &Client, id: u32) -> Result<u32, JobError> {
    Ok(id)
}

async fn locks_are_counted_per_client_and_per_template(kind: Kind) {
    let client = common::client(kind, "lock-stats");
    let lock = |ttl| Lock::new("stats:a").client(&client).ttl(ttl);
    let held = lock(Duration::from_secs(5)).acquire().await.unwrap();
    let refused = lock(Duration::from_secs(5))
        .wait(Duration::from_millis(100))
        .retry(Duration::from_millis(10))
        .acquire()
        .await;
    assert!(
        matches!(refused, Err(LockError::Timeout { .. })),
        "{refused:?}"
    );
    held.release().await.unwrap();
    let expired = lock(Duration::from_millis(50)).acquire().await.unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(matches!(expired.release().await, Err(LockError::Lost)));
    let stats = client.lock_stats();
    assert_eq!(
        (stats.acquired, stats.contended, stats.timeouts, stats.lost),
        (2, 1, 1, 1),
        "{stats:?}"
    );
    assert_eq!(
        (stats.late_grants, stats.backend_errors),
        (0, 0),
        "{stats:?}"
    );

    assert_eq!(counted_job(&client, 1).await.unwrap(), 1);
    assert_eq!(counted_job(&client, 2).await.unwrap(), 2);
    assert_eq!(
        client.lock_stats().acquired,
        4,
        "#[with_lock] counts for its client too"
    );
    let row = redis_patterns::lock::stats_by_template()
        .into_iter()
        .find(|(template, _)| *template == "counted:<id>");
    let (_, by_template) = row.expect("the attribute's template is listed");
    assert!(by_template.acquired >= 2, "{by_template:?}");
    assert!(
        redis_patterns::lock::stats_by_template()
            .iter()
            .all(|(template, _)| *template != "stats:a"),
        "locks taken with `Lock` are not attributes"
    );
}

on_both_backends!(
    locks_are_counted_per_client_and_per_template,
    the_lock_makes_read_modify_write_exclusive_across_clients,
    a_holder_whose_lease_expired_cannot_release_the_next_holders_lock,
    a_crashed_holder_is_replaced_after_its_ttl_with_a_greater_fencing_token,
    fencing_tokens_increase_strictly,
    fenced_grants_and_tokens_on_request_share_one_sequence,
    a_holder_whose_lease_ran_out_gets_no_fencing_token,
    a_body_running_three_ttls_keeps_the_lock_the_whole_time,
    deleting_the_lock_from_outside_aborts_the_body_with_lost,
    on_lost_continue_lets_the_body_finish_and_tells_it,
    dropping_the_call_releases_the_lock_promptly,
    waiting_gives_up_with_timeout,
    adversarial_lock_names_stay_in_their_hash_tag,
);

static RAN: AtomicU32 = AtomicU32::new(0);

#[with_lock(key = "payment:<order_id>", ttl = "10s", client = client)]
async fn pay(client: &Client, order_id: u64) -> Result<(), JobError> {
    let _ = order_id;
    RAN.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// A fencing key ahead of the server clock (a clock stepped back, or a failover to a server
/// whose clock is behind): the next token is the last one + 1, not the clock, and the key
/// keeps it with the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fencing_token_never_goes_back_when_the_clock_does() {
    let client = common::client(Kind::Redis, "fencing-clock");
    let fence = format!("{}:{{ledger}}:fence", client.namespace().unwrap());
    let mut conn = common::server().redis();
    // Ten years ahead of the server clock, in µs.
    let (secs, _): (u64, u64) = redis::cmd("TIME").query(&mut conn).unwrap();
    let ahead = (secs + 10 * 365 * 86_400) * 1_000_000;
    let _: () = redis::cmd("SET")
        .arg(&fence)
        .arg(ahead)
        .arg("PX")
        .arg(60_000)
        .query(&mut conn)
        .unwrap();
    let lock = Lock::new("ledger")
        .client(&client)
        .ttl(Duration::from_secs(5));
    let guard = lock.clone().acquire().await.unwrap();
    assert_eq!(guard.fencing_token().await.unwrap(), ahead + 1);
    let stored: u64 = redis::cmd("GET").arg(&fence).query(&mut conn).unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg(&fence).query(&mut conn).unwrap();
    assert_eq!(stored, ahead + 1);
    assert!(
        ttl > 4_000 && ttl <= 5_000,
        "the fencing key lives with the lease: {ttl}"
    );
    guard.release().await.unwrap();
    let next = lock.acquire().await.unwrap();
    assert_eq!(next.fencing_token().await.unwrap(), ahead + 2);
    next.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_fail_closed_when_redis_is_down() {
    let server = RedisServer::start();
    let client = Client::new(
        redis_patterns::Config::from_url(&server.url())
            .unwrap()
            .namespace(common::namespace("fail-closed"))
            .connect_timeout(Duration::from_millis(200))
            .command_timeout(Duration::from_millis(200)),
    )
    .unwrap();
    pay(&client, 1).await.unwrap();
    assert_eq!(RAN.load(Ordering::SeqCst), 1);
    server.stop();
    let result = tokio::time::timeout(Duration::from_secs(5), pay(&client, 1))
        .await
        .expect("no hang past the timeouts");
    assert!(
        matches!(result, Err(JobError::Lock(LockError::Backend(_)))),
        "{result:?}"
    );
    assert_eq!(
        RAN.load(Ordering::SeqCst),
        1,
        "the body did not run unprotected"
    );
}

fn redlock_clients(servers: &[RedisServer], ns: &str) -> Vec<Client> {
    servers
        .iter()
        .map(|s| {
            Client::new(
                redis_patterns::Config::from_url(&s.url())
                    .unwrap()
                    .namespace(ns)
                    .connect_timeout(Duration::from_millis(100))
                    .command_timeout(Duration::from_millis(100)),
            )
            .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redlock_needs_a_majority_of_three_servers() {
    let servers: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let ns = common::namespace("redlock");
    let redlock = Redlock::new(redlock_clients(&servers, &ns)).ttl(Duration::from_secs(10));

    let guard = redlock.acquire("invoice:1").await.unwrap();
    assert!(guard.validity() > Duration::from_secs(9));
    // A second owner cannot get a majority while the first holds it.
    let competitor = Redlock::new(redlock_clients(&servers, &ns))
        .acquire("invoice:1")
        .await;
    assert!(
        matches!(competitor, Err(LockError::Timeout { .. })),
        "{competitor:?}"
    );
    guard.release().await;

    servers[0].stop();
    let guard = redlock
        .acquire("invoice:2")
        .await
        .expect("two of three servers are a majority");
    guard.release().await;

    servers[1].stop();
    let result = redlock
        .clone()
        .wait(Duration::from_millis(300))
        .acquire("invoice:3")
        .await;
    assert!(
        matches!(
            result,
            Err(LockError::Backend(_)) | Err(LockError::Timeout { .. })
        ),
        "one server of three is not a majority: {result:?}"
    );
}

#[tokio::test]
async fn redlock_releases_partial_grants_so_others_are_not_blocked() {
    let servers: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let ns = common::namespace("redlock-partial");
    let clients = redlock_clients(&servers, &ns);
    // Somebody holds the lock on two servers directly: no majority for anyone else.
    let mut blockers = Vec::new();
    for client in &clients[..2] {
        blockers.push(Lock::new("report").client(client).acquire().await.unwrap());
    }
    let result = Redlock::new(clients.clone()).acquire("report").await;
    assert!(
        matches!(result, Err(LockError::Timeout { .. })),
        "{result:?}"
    );
    // The failed round released its grant on the third server.
    let third = Lock::new("report").client(&clients[2]).acquire().await;
    assert!(third.is_ok(), "{third:?}");
    for guard in blockers {
        guard.release().await.unwrap();
    }
}
