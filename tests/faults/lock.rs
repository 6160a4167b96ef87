//! Locks under faults: leases are never trusted past their end, however slow the path;
//! fencing tokens never go backwards; locks fail closed; two holders never overlap.

use std::sync::Mutex;
use std::time::Duration;

use redis_patterns::lock::{Lock, LockError};
use redis_patterns::{Client, with_lock};
use tokio::time::Instant;

use crate::bounded;
use crate::common::{self, RedisServer, proxy::FaultProxy};

/// Records when it is dropped: the instant a body stopped running, however it stopped.
struct EndMark<'a>(&'a Mutex<Option<Instant>>);

impl Drop for EndMark<'_> {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(Instant::now());
    }
}

#[with_lock(key = "slow:<id>", ttl = "1s", client = client)]
async fn long_body(
    client: &Client,
    id: u32,
    ended: &Mutex<Option<Instant>>,
) -> Result<(), LockError> {
    let _ = id;
    let _end = EndMark(ended);
    tokio::time::sleep(Duration::from_secs(6)).await;
    Ok(())
}

/// Runs `long_body` through `proxy`, makes the path slow once the lock is held (after
/// `before_slowdown`, e.g. a `SCRIPT FLUSH`), lets a second owner take the lock directly, and
/// checks the first body ended before the second owner got the lock.
async fn the_body_ends_before_the_next_owner_starts(test: &str, before_slowdown: impl FnOnce()) {
    let server = common::server();
    let proxy = FaultProxy::start(server.port());
    let ns = common::namespace(test);
    // A command timeout far beyond the lease: only the lease may end the wait.
    let slow = common::client_in(&proxy.url(), &ns, Duration::from_secs(10));
    let direct = common::client_in(&server.url(), &ns, Duration::from_secs(2));
    let ended = Mutex::new(None);
    let job = long_body(&slow, 1, &ended);
    let next_owner = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        before_slowdown();
        proxy.delay(Duration::from_secs(3), Duration::ZERO);
        let guard = Lock::new("slow:1")
            .client(&direct)
            .wait(Duration::from_secs(5))
            .retry(Duration::from_millis(2))
            .acquire()
            .await
            .expect("the next owner gets the lock once the lease ran out");
        let started = Instant::now();
        guard.release().await.unwrap();
        started
    };
    let (result, next_started) = bounded(Duration::from_secs(8), async {
        tokio::join!(job, next_owner)
    })
    .await;
    assert!(matches!(result, Err(LockError::Lost)), "{result:?}");
    let ended = ended.lock().unwrap().expect("the body ended");
    assert!(
        ended <= next_started,
        "the first body ran {:?} into the next owner's lease",
        ended - next_started
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_stuck_on_a_slow_path_cancels_the_body_at_the_lease_end() {
    the_body_ends_before_the_next_owner_starts("slow-renewal", || {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_stuck_behind_a_script_reload_cancels_the_body_at_the_lease_end() {
    // NOSCRIPT → SCRIPT LOAD → retry: three slow round trips, still bounded by the lease.
    the_body_ends_before_the_next_owner_starts("noscript-renewal", || {
        common::server().script_flush()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_path_cancels_the_body_at_the_lease_end() {
    let server = common::server();
    let proxy = FaultProxy::start(server.port());
    let ns = common::namespace("blackholed-lease");
    let dead = common::client_in(&proxy.url(), &ns, Duration::from_secs(10));
    let direct = common::client_in(&server.url(), &ns, Duration::from_secs(2));
    let ended = Mutex::new(None);
    let next_owner = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy.blackhole();
        let guard = Lock::new("slow:2")
            .client(&direct)
            .wait(Duration::from_secs(5))
            .retry(Duration::from_millis(2))
            .acquire()
            .await
            .unwrap();
        let started = Instant::now();
        guard.release().await.unwrap();
        started
    };
    let (result, next_started) = bounded(Duration::from_secs(8), async {
        tokio::join!(long_body(&dead, 2, &ended), next_owner)
    })
    .await;
    assert!(matches!(result, Err(LockError::Lost)), "{result:?}");
    assert!(ended.lock().unwrap().expect("the body ended") <= next_started);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_whose_reply_arrives_after_the_lease_is_no_acquisition() {
    let server = common::server();
    let proxy = FaultProxy::start(server.port());
    let ns = common::namespace("late-grant");
    let slow = common::client_in(&proxy.url(), &ns, Duration::from_secs(10));
    let direct = common::client_in(&server.url(), &ns, Duration::from_secs(2));
    slow.connect().await.unwrap();
    // Replies come back 600 ms late: every grant of a 300 ms lease is over on arrival.
    proxy.delay(Duration::ZERO, Duration::from_millis(600));
    let late = bounded(
        Duration::from_secs(3),
        Lock::new("late")
            .client(&slow)
            .ttl(Duration::from_millis(300))
            .wait(Duration::from_millis(700))
            .acquire(),
    )
    .await;
    match late {
        Err(LockError::LeaseTooShort { ttl, round_trip }) => {
            assert_eq!(ttl, Duration::from_millis(300));
            assert!(round_trip >= Duration::from_millis(290), "{round_trip:?}");
        }
        other => panic!("a late grant was handed out: {other:?}"),
    }
    // The late grants were given back (or expired): another owner gets the lock at once.
    let next = Lock::new("late")
        .client(&direct)
        .wait(Duration::from_secs(2))
        .acquire()
        .await
        .unwrap();
    next.release().await.unwrap();
    proxy.pass();
    let guard = Lock::new("late")
        .client(&slow)
        .ttl(Duration::from_millis(300))
        .wait(Duration::from_secs(2))
        .acquire()
        .await
        .expect("on a healthy path the same lease is granted");
    // An extension confirmed only after the new lease ran out is no extension either.
    proxy.delay(Duration::ZERO, Duration::from_millis(600));
    let extended = guard.extend(Duration::from_millis(300)).await;
    assert!(
        matches!(extended, Err(LockError::LeaseTooShort { .. })),
        "{extended:?}"
    );
}

/// A fencing token asked for over a dead path is a backend error within the command timeout,
/// never a token to write with; once the path is back, the holder is issued its token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fencing_token_over_a_dead_path_is_a_backend_error_within_the_timeout() {
    let server = common::server();
    let proxy = FaultProxy::start(server.port());
    let ns = common::namespace("fence-dead-path");
    let client = common::client_in(&proxy.url(), &ns, Duration::from_millis(300));
    let guard = Lock::new("ledger")
        .client(&client)
        .ttl(Duration::from_secs(30))
        .acquire()
        .await
        .unwrap();
    proxy.blackhole();
    let asked = Instant::now();
    let token = bounded(Duration::from_secs(5), guard.fencing_token()).await;
    assert!(matches!(token, Err(LockError::Backend(_))), "{token:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "a 300 ms command timeout, waited {:?}",
        asked.elapsed()
    );
    proxy.pass();
    // The dead connection is dropped and dialled again; meanwhile calls may still fail.
    let mut issued = None;
    for _ in 0..50 {
        match bounded(Duration::from_secs(5), guard.fencing_token()).await {
            Ok(token) => {
                issued = Some(token);
                break;
            }
            Err(LockError::Backend(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert!(
        issued.is_some_and(|t| t > 0),
        "no token once the path was back"
    );
    guard.release().await.unwrap();
}

async fn take_and_release(client: &Client) -> u64 {
    // After a restart the first attempts may meet the dead connection; each is bounded.
    for _ in 0..50 {
        match Lock::new("ledger").client(client).acquire().await {
            Ok(guard) => match guard.fencing_token().await {
                Ok(token) => {
                    guard.release().await.unwrap();
                    return token;
                }
                Err(LockError::Backend(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(other) => panic!("{other:?}"),
            },
            Err(LockError::Backend(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(other) => panic!("{other:?}"),
        }
    }
    panic!("the lock never came back after the fault");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fencing_tokens_keep_increasing_across_flushes_evictions_and_restarts() {
    let server = RedisServer::start();
    let ns = common::namespace("fencing-faults");
    let client = common::client_in(&server.url(), &ns, Duration::from_secs(2));
    let mut last = 0;
    let mut check = |token: u64, after: &str| {
        assert!(token > last, "token {token} after {last} ({after})");
        last = token;
    };
    for _ in 0..5 {
        check(take_and_release(&client).await, "a release");
    }
    let _: () = redis::cmd("FLUSHALL").query(&mut server.redis()).unwrap();
    check(take_and_release(&client).await, "FLUSHALL");
    let _: () = redis::cmd("DEL")
        .arg(format!("{ns}:{{ledger}}:fence"))
        .query(&mut server.redis())
        .unwrap();
    check(
        take_and_release(&client).await,
        "the fencing key's eviction",
    );
    server.restart();
    check(
        take_and_release(&client).await,
        "a restart without persistence",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_lock_leaves_a_key_without_a_ttl() {
    let server = common::server();
    let ns = common::namespace("lock-ttls");
    let client = common::client_in(&server.url(), &ns, Duration::from_secs(2));
    for id in 0..200 {
        // Fencing keys both ways: issued with the grant, and on request.
        let guard = Lock::new(format!("payment:{id}"))
            .client(&client)
            .fenced(id % 2 == 0)
            .acquire()
            .await
            .unwrap();
        guard.fencing_token().await.unwrap();
        guard.release().await.unwrap();
    }
    // A refused attempt marks the lock as awaited: the mark has a TTL too.
    let held = Lock::new("busy").client(&client).acquire().await.unwrap();
    let refused = Lock::new("busy")
        .client(&client)
        .wait(Duration::ZERO)
        .acquire()
        .await;
    assert!(
        matches!(refused, Err(LockError::Timeout { .. })),
        "{refused:?}"
    );
    held.release().await.unwrap();
    let ended = Mutex::new(None);
    let _ = tokio::time::timeout(Duration::from_millis(50), long_body(&client, 9, &ended)).await;
    let fences = server
        .keys(&ns)
        .iter()
        .filter(|k| k.ends_with(":fence"))
        .count();
    assert_eq!(
        fences,
        200,
        "the fencing keys are there: {:?}",
        server.keys(&ns)
    );
    assert!(
        server
            .keys(&ns)
            .iter()
            .any(|k| k.ends_with("{busy}:waiters")),
        "the waiters' mark is there: {:?}",
        server.keys(&ns)
    );
    assert_eq!(server.keys_without_ttl(&ns), Vec::<String>::new());
}

static BODY_RAN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[with_lock(key = "guarded", ttl = "5s", client = client)]
async fn guarded(client: &Client) -> Result<(), LockError> {
    BODY_RAN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_fail_closed_under_server_faults_within_their_timeouts() {
    use std::sync::atomic::Ordering::SeqCst;
    let server = RedisServer::start();
    let ns = common::namespace("lock-server-faults");
    let client = common::client_in(&server.url(), &ns, Duration::from_millis(300));
    guarded(&client).await.unwrap();
    let ran = BODY_RAN.load(SeqCst);

    // Out of memory: the SET is refused; the body does not run.
    server.out_of_memory(true);
    let result = bounded(Duration::from_secs(2), guarded(&client)).await;
    assert!(matches!(result, Err(LockError::Backend(_))), "{result:?}");
    server.out_of_memory(false);

    // A key of the wrong type under the lock's name: an error, not a panic or a grant.
    let _: () = redis::cmd("RPUSH")
        .arg(format!("{ns}:{{guarded}}:mutex"))
        .arg("x")
        .query(&mut server.redis())
        .unwrap();
    let result = bounded(Duration::from_secs(2), guarded(&client)).await;
    assert!(
        matches!(
            result,
            Err(LockError::Backend(_)) | Err(LockError::Timeout { .. })
        ),
        "{result:?}"
    );
    let _: () = redis::cmd("DEL")
        .arg(format!("{ns}:{{guarded}}:mutex"))
        .query(&mut server.redis())
        .unwrap();

    // A stalled server: the acquisition gives up within the command timeout.
    let stall = server.stall(2);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let result = bounded(Duration::from_secs(2), guarded(&client)).await;
    assert!(matches!(result, Err(LockError::Backend(_))), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(BODY_RAN.load(SeqCst), ran, "no body ran without its lock");
    stall.join().unwrap();

    // Forgotten scripts and killed connections are recovered from transparently.
    server.script_flush();
    server.kill_clients();
    let mut outcome = Err(LockError::Lost);
    for _ in 0..20 {
        outcome = bounded(Duration::from_secs(2), guarded(&client)).await;
        if outcome.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(outcome.is_ok(), "{outcome:?}");
    assert!(server.keys_without_ttl(&ns).is_empty());
}

/// One contended round on lock `name`: `holder` takes it, a waiter of `waiter` (polling every
/// `retry` where releases cannot be heard) waits; `during` runs while it waits, then the holder
/// releases. Returns how long after the release the waiter held the lock.
async fn contended_round(
    holder: &Client,
    waiter: &Client,
    name: &str,
    retry: Duration,
    during: impl FnOnce(),
) -> Duration {
    let lease = Duration::from_secs(30);
    let guard = Lock::new(name)
        .client(holder)
        .ttl(lease)
        .acquire()
        .await
        .unwrap();
    let patient = Lock::new(name)
        .client(waiter)
        .ttl(lease)
        .wait(Duration::from_secs(20))
        .retry(retry);
    let waiting = tokio::spawn(async move {
        let guard = patient.acquire().await.unwrap();
        let acquired = Instant::now();
        guard.release().await.unwrap();
        acquired
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    during();
    tokio::time::sleep(Duration::from_millis(50)).await;
    guard.release().await.unwrap();
    let released = Instant::now();
    bounded(Duration::from_secs(10), waiting)
        .await
        .unwrap()
        .saturating_duration_since(released)
}

/// Two clients of `server` in one namespace (a holder and a waiter), with 250 ms commands.
fn holder_and_waiter(server: &RedisServer, test: &str) -> (Client, Client) {
    let ns = common::namespace(test);
    let command = Duration::from_millis(250);
    (
        common::client_in(&server.url(), &ns, command),
        common::client_in(&server.url(), &ns, command),
    )
}

/// Lock waiters hear releases on a tracking connection of their client. When it is killed
/// (`CLIENT KILL`) they poll every `retry` until it is re-armed, and still take the lock right
/// after the release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_waiters_still_acquire_when_their_notifications_are_killed() {
    let server = RedisServer::start();
    let (holder, waiter) = holder_and_waiter(&server, "lock-kill");
    let retry = Duration::from_millis(200);
    // A first round arms the waiter's notifications.
    let late = contended_round(&holder, &waiter, "kill", retry, || {}).await;
    assert!(late < Duration::from_secs(1), "armed round: {late:?}");
    let late = contended_round(&holder, &waiter, "kill", retry, || {
        assert!(
            server.kill_tracking_clients() > 0,
            "the waiter tracks the lock's mark"
        );
    })
    .await;
    // Heard on the re-armed connection, or found by a poll (every 100 to 300 ms).
    assert!(late < Duration::from_secs(1), "after CLIENT KILL: {late:?}");
}

/// A server that refuses tracking (`CLIENT` renamed away, as on some proxies): waiters poll
/// every `retry` and take the lock after the release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_waiters_poll_where_the_server_refuses_tracking() {
    let server = RedisServer::start_with(&["--rename-command", "CLIENT", "\"\""]);
    let (holder, waiter) = holder_and_waiter(&server, "lock-refused");
    for _ in 0..2 {
        let late = contended_round(
            &holder,
            &waiter,
            "refused",
            Duration::from_millis(200),
            || {},
        )
        .await;
        assert!(
            late < Duration::from_secs(1),
            "polling every 100-300 ms: {late:?}"
        );
    }
}

/// A restart (without persistence) loses the lock and drops the waiter's tracking: the waiter
/// wakes, polls, and takes the lock once the server is back, without a release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_waiters_take_the_lock_after_a_server_restart() {
    let server = RedisServer::start();
    let (holder, waiter) = holder_and_waiter(&server, "lock-restart");
    // A first round arms the waiter's notifications.
    let late = contended_round(
        &holder,
        &waiter,
        "restart",
        Duration::from_millis(200),
        || {},
    )
    .await;
    assert!(late < Duration::from_secs(1), "armed round: {late:?}");
    let lease = Duration::from_secs(30);
    let guard = Lock::new("restart")
        .client(&holder)
        .ttl(lease)
        .acquire()
        .await
        .unwrap();
    let patient = Lock::new("restart")
        .client(&waiter)
        .ttl(lease)
        .wait(Duration::from_secs(20))
        .retry(Duration::from_millis(500));
    let waiting = tokio::spawn(async move { patient.acquire().await.map(|g| (g, Instant::now())) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.restart();
    let restarted = Instant::now();
    let (taken, at) = bounded(Duration::from_secs(10), waiting)
        .await
        .unwrap()
        .expect("the waiter takes the lock the restart lost");
    let late = at.saturating_duration_since(restarted);
    // Woken when tracking dropped, then a poll after 250 to 750 ms.
    assert!(late < Duration::from_secs(3), "after the restart: {late:?}");
    // The old holder's release does not succeed: `Lost`, or its own connection's first
    // command since the restart failing.
    let old = guard.release().await;
    assert!(
        matches!(old, Err(LockError::Lost | LockError::Backend(_))),
        "the old holder's lock was lost with the restart: {old:?}"
    );
    taken.release().await.unwrap();
}
