//! Caching under faults: every call answers (fail open) within its timeouts, the body runs in
//! place of the cache, and caching is back once the fault is gone.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use redis_patterns::{Client, Config, cached};
use tokio::time::Instant;

use crate::bounded;
use crate::common::{self, RedisServer, proxy::FaultProxy};

static BODY: AtomicU32 = AtomicU32::new(0);

#[cached(key = "item:<id>", ttl = "10m", stampede = "lock", client = client)]
async fn item(client: &Client, id: u32) -> Result<String, String> {
    BODY.fetch_add(1, Ordering::SeqCst);
    Ok(format!("item {id}"))
}

const CONNECT: Duration = Duration::from_millis(400);
const COMMAND: Duration = Duration::from_millis(250);

/// The longest a cached call may take while Redis misbehaves: dialling, plus a read, a
/// stampede-lock script and a write, each bounded by the command timeout, plus scheduling.
fn call_bound() -> Duration {
    CONNECT + 3 * COMMAND + Duration::from_millis(500)
}

/// Recovery after the fault is lifted: the bound README states (connect + 2 × command + 1 s).
fn recovery_bound() -> Duration {
    CONNECT + 2 * COMMAND + Duration::from_secs(1)
}

struct Rig {
    server: RedisServer,
    proxy: FaultProxy,
    client: Client,
    ns: String,
}

fn rig(test: &str) -> Rig {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let ns = common::namespace(test);
    let client = Client::new(
        Config::from_url(&proxy.url())
            .unwrap()
            .namespace(&ns)
            .connect_timeout(CONNECT)
            .command_timeout(COMMAND),
    )
    .unwrap();
    Rig {
        server,
        proxy,
        client,
        ns,
    }
}

/// Warms the cache, injects the fault, checks that calls fail open within the bound, lifts
/// the fault, and checks that hits come from Redis again within the recovery bound.
async fn fails_open_and_recovers(test: &str, inject: impl Fn(&Rig), lift: impl Fn(&Rig)) {
    let rig = rig(test);
    assert_eq!(item(&rig.client, 1).await.unwrap(), "item 1");
    inject(&rig);
    for id in 0..6 {
        let started = Instant::now();
        let value = bounded(Duration::from_secs(5), item(&rig.client, 100 + id)).await;
        assert_eq!(value.unwrap(), format!("item {}", 100 + id));
        assert!(
            started.elapsed() <= call_bound(),
            "a call waited {:?} under the fault",
            started.elapsed()
        );
    }
    lift(&rig);
    served_by_redis_again(&rig.client).await;
    assert!(rig.server.keys_without_ttl(&rig.ns).is_empty());
}

/// Calls until one is a cache hit, failing if that takes longer than the recovery bound.
async fn served_by_redis_again(client: &Client) {
    let lifted = Instant::now();
    loop {
        let hits = client.cache_stats().hits;
        bounded(Duration::from_secs(5), item(client, 1))
            .await
            .unwrap();
        if client.cache_stats().hits > hits {
            return;
        }
        assert!(
            lifted.elapsed() <= recovery_bound(),
            "still not served by Redis {:?} after the fault ended",
            lifted.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn key_of(rig: &Rig, id: u32) -> String {
    format!("{}:{{item:#{id}}}", rig.ns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_fails_open_on_a_slow_network() {
    fails_open_and_recovers(
        "cache-slow",
        |r| {
            r.proxy
                .delay(Duration::from_secs(2), Duration::from_secs(2))
        },
        |r| r.proxy.pass(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_fails_open_on_a_blackholed_path() {
    fails_open_and_recovers("cache-blackhole", |r| r.proxy.blackhole(), |_| {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_fails_open_when_connections_are_reset() {
    fails_open_and_recovers("cache-reset", |r| r.proxy.reset(), |_| {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_fails_open_while_the_server_is_stalled() {
    let stall = std::sync::Mutex::new(None);
    fails_open_and_recovers(
        "cache-stall",
        |r| *stall.lock().unwrap() = Some(r.server.stall(3)),
        |_| stall.lock().unwrap().take().unwrap().join().unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_fails_open_when_the_server_is_killed_and_restarted() {
    let rig = rig("cache-restart");
    assert_eq!(item(&rig.client, 1).await.unwrap(), "item 1");
    rig.server.stop();
    for id in 0..6 {
        let started = Instant::now();
        bounded(Duration::from_secs(5), item(&rig.client, id))
            .await
            .unwrap();
        assert!(started.elapsed() <= call_bound(), "{:?}", started.elapsed());
    }
    rig.server.restart();
    served_by_redis_again(&rig.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_survives_killed_clients_and_flushed_scripts() {
    fails_open_and_recovers(
        "cache-kill-flush",
        |r| {
            r.server.kill_clients();
            r.server.script_flush();
        },
        |_| {},
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_fails_open_when_writes_fail_with_oom() {
    fails_open_and_recovers(
        "cache-oom",
        |r| r.server.out_of_memory(true),
        |r| r.server.out_of_memory(false),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_fails_open_on_a_key_of_the_wrong_type() {
    let rig = rig("cache-wrongtype");
    let mut conn = rig.server.redis();
    let _: () = redis::cmd("RPUSH")
        .arg(key_of(&rig, 7))
        .arg("x")
        .query(&mut conn)
        .unwrap();
    let before = BODY.load(Ordering::SeqCst);
    let value = bounded(Duration::from_secs(5), item(&rig.client, 7)).await;
    assert_eq!(value.unwrap(), "item 7");
    assert!(BODY.load(Ordering::SeqCst) > before, "the body ran");
    assert!(rig.client.cache_stats().backend_errors >= 1);
    assert!(
        rig.server
            .keys_without_ttl(&rig.ns)
            .iter()
            .all(|k| *k == key_of(&rig, 7))
    );
}

static FAILING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cached(key = "quote:<id>", ttl = "300ms", stale_if_error = "1h", client = client)]
async fn quote(client: &Client, id: u32) -> Result<String, String> {
    if FAILING.load(Ordering::SeqCst) {
        return Err(format!("origin down for {id}"));
    }
    Ok(format!("quote {id}"))
}

/// `stale_if_error` with Redis unreachable: the stale entry cannot be read, so the call fails
/// open (the function's own answer, error included) within the bound; once Redis is back, the
/// entry kept past its TTL answers for the failing origin again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_entries_with_redis_down_fail_open_to_the_function() {
    let rig = rig("cache-stale-down");
    assert_eq!(quote(&rig.client, 1).await.unwrap(), "quote 1");
    tokio::time::sleep(Duration::from_millis(400)).await;
    rig.proxy.blackhole();
    for failing in [false, true] {
        FAILING.store(failing, Ordering::SeqCst);
        let started = Instant::now();
        let answer = bounded(Duration::from_secs(5), quote(&rig.client, 1)).await;
        if failing {
            assert_eq!(
                answer,
                Err("origin down for 1".to_owned()),
                "nothing stale is reachable"
            );
        } else {
            assert_eq!(answer.unwrap(), "quote 1");
        }
        assert!(
            started.elapsed() <= call_bound(),
            "a call waited {:?} under the fault",
            started.elapsed()
        );
    }
    rig.proxy.pass();
    let lifted = Instant::now();
    loop {
        let answer = bounded(Duration::from_secs(5), quote(&rig.client, 1)).await;
        if answer.is_ok() {
            break;
        }
        assert!(
            lifted.elapsed() <= recovery_bound(),
            "the stale entry was not served {:?} after Redis came back",
            lifted.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rig.client.cache_stats().stale_on_error, 1);
    FAILING.store(false, Ordering::SeqCst);
}

#[cached(key = "tagged:<id>", ttl = "10m", tags = ["brand:<brand>"], client = client)]
async fn tagged(client: &Client, id: u32, brand: &str) -> String {
    BODY.fetch_add(1, Ordering::SeqCst);
    format!("tagged {id} of {brand}")
}

/// Tags with the server down: a tagged call fails open within its bound (its read and its tag
/// versions fail; nothing is stored), `invalidate_tag` reports the failure as a typed error
/// within the bound, and once a server is back tagged entries are hits again and an
/// invalidation takes effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_fail_open_while_redis_is_down_and_work_again_after() {
    let rig = rig("cache-tags-down");
    assert_eq!(tagged(&rig.client, 1, "acme").await, "tagged 1 of acme");
    rig.server.stop();
    for id in 2..4 {
        let started = Instant::now();
        let value = bounded(Duration::from_secs(5), tagged(&rig.client, id, "acme")).await;
        assert_eq!(value, format!("tagged {id} of acme"));
        assert!(
            started.elapsed() <= call_bound(),
            "a tagged call waited {:?} with the server down",
            started.elapsed()
        );
    }
    let started = Instant::now();
    let invalidated = bounded(
        Duration::from_secs(5),
        rig.client.invalidate_tag("brand:acme"),
    )
    .await;
    assert!(
        matches!(
            invalidated,
            Err(redis_patterns::Error::Backend(_) | redis_patterns::Error::Unavailable { .. })
        ),
        "{invalidated:?}"
    );
    assert!(started.elapsed() <= call_bound());
    rig.server.restart();
    let restarted = Instant::now();
    loop {
        let hits = rig.client.cache_stats().hits;
        bounded(Duration::from_secs(5), tagged(&rig.client, 1, "acme")).await;
        if rig.client.cache_stats().hits > hits {
            break;
        }
        assert!(
            restarted.elapsed() <= recovery_bound() + Duration::from_secs(2),
            "no tagged hit after the server came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(rig.client.invalidate_tag("brand:acme").await.unwrap());
    let misses = rig.client.cache_stats().misses;
    tagged(&rig.client, 1, "acme").await;
    assert_eq!(rig.client.cache_stats().misses, misses + 1, "invalidated");
    assert!(rig.server.keys_without_ttl(&rig.ns).is_empty());
}
