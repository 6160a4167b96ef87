//! Every public builder accepts every duration, from zero to `Duration::MAX`: it clamps (as
//! documented) or the client reports a configuration error, and nothing panics or overflows
//! a clock, on Redis or in memory.

mod common;

use std::time::Duration;

use common::Kind;
use redis_patterns::lock::{Lock, LockError, MAX_LOCK_DURATION, Redlock};
use redis_patterns::{Client, Config, Error, cached};

const EXTREMES: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_millis(1),
    Duration::from_secs(u64::MAX),
    Duration::MAX,
];

fn url(kind: Kind) -> String {
    match kind {
        Kind::Redis => common::server().url(),
        Kind::Memory => "mem://".to_owned(),
        #[cfg(feature = "cluster")]
        Kind::Cluster => common::cluster::cluster().url(),
        #[cfg(feature = "sentinel")]
        Kind::Sentinel => common::sentinel::group().url(),
    }
}

async fn lock_builders_take_any_duration(kind: Kind) {
    let client = common::client(kind, "lock-extremes");
    for (i, ttl) in EXTREMES.into_iter().enumerate() {
        for (j, wait) in EXTREMES.into_iter().enumerate() {
            for retry in EXTREMES {
                let name = format!("extreme:{i}:{j}");
                let lock = Lock::new(&name)
                    .client(&client)
                    .ttl(ttl)
                    .wait(wait)
                    .retry(retry);
                let tiny_lease = ttl < Duration::from_millis(10);
                match tokio::time::timeout(Duration::from_millis(200), lock.acquire()).await {
                    Ok(Ok(guard)) => {
                        assert!(guard.ttl() >= Duration::from_millis(1));
                        assert!(guard.ttl() <= MAX_LOCK_DURATION);
                        match guard.extend(ttl).await {
                            Ok(()) => match guard.release().await {
                                Ok(()) => {}
                                // Extended by 1 ms: over again before the release arrives.
                                Err(LockError::Lost) if tiny_lease => {}
                                Err(other) => panic!("release after {ttl:?}: {other:?}"),
                            },
                            // A 1 ms lease may be over before the extension arrives
                            // (late, or already expired: lost).
                            Err(LockError::LeaseTooShort { .. } | LockError::Lost)
                                if tiny_lease => {}
                            Err(other) => panic!("extend by {ttl:?}: {other:?}"),
                        }
                    }
                    // A 1 ms lease on a real network may be over before its reply arrives,
                    // on every attempt of a long wait (and the previous combination's late
                    // grant may still hold the name for its millisecond).
                    Ok(Err(LockError::LeaseTooShort { .. } | LockError::Timeout { .. }))
                    | Err(_)
                        if tiny_lease && kind != Kind::Memory => {}
                    other => panic!("ttl {ttl:?} wait {wait:?} retry {retry:?}: {other:?}"),
                }
            }
        }
    }
    // A long lease really is long (clamped, not wrapped around to something tiny).
    let guard = Lock::new("extreme:long")
        .client(&client)
        .ttl(Duration::MAX)
        .acquire()
        .await
        .unwrap();
    assert!(guard.lease_remaining() > Duration::from_secs(360 * 24 * 3600));
    let held = Lock::new("extreme:long")
        .client(&client)
        .wait(Duration::from_millis(30))
        .retry(Duration::MAX)
        .acquire()
        .await;
    assert!(matches!(held, Err(LockError::Timeout { .. })), "{held:?}");
    guard.release().await.unwrap();
}

async fn redlock_builders_take_any_duration(kind: Kind) {
    // Three independent stores (namespaces of their own stand in for servers).
    let clients: Vec<Client> = (0..3)
        .map(|_| common::client(kind, "redlock-extremes"))
        .collect();
    if !matches!(kind, Kind::Redis | Kind::Memory) {
        // A cluster or a Sentinel group replicates itself: Redlock refuses it, whatever the
        // durations.
        let refused = Redlock::new(clients)
            .ttl(Duration::MAX)
            .acquire("extreme")
            .await;
        assert!(
            matches!(
                refused,
                Err(LockError::Backend(redis_patterns::Error::Config(_)))
            ),
            "{refused:?}"
        );
        return;
    }
    for ttl in EXTREMES {
        for wait in EXTREMES {
            for retry in EXTREMES {
                let redlock = Redlock::new(clients.clone())
                    .ttl(ttl)
                    .wait(wait)
                    .retry(retry);
                // A tiny lease has no validity left after a round trip: every round fails, for
                // as long as the wait allows.
                let tiny_lease = ttl < Duration::from_millis(10);
                match tokio::time::timeout(Duration::from_millis(200), redlock.acquire("extreme"))
                    .await
                {
                    Ok(Ok(guard)) => guard.release().await,
                    // …or, on a busy machine, its per-server timeout (a tenth of the lease,
                    // at least a few milliseconds) runs out before any server answers.
                    Ok(Err(
                        LockError::Timeout { .. }
                        | LockError::Backend(redis_patterns::Error::Timeout(_)),
                    ))
                    | Err(_)
                        if tiny_lease => {}
                    other => panic!("ttl {ttl:?} wait {wait:?} retry {retry:?}: {other:?}"),
                }
            }
        }
    }
}

#[cached(key = "extreme:<id>", ttl = "1m", client = client)]
async fn cached_value(client: &Client, id: u32) -> Result<u32, String> {
    Ok(id)
}

async fn config_builders_take_any_duration(kind: Kind) {
    for connect in EXTREMES {
        for command in EXTREMES {
            for backoff in EXTREMES {
                let config = Config::from_url(&url(kind))
                    .unwrap()
                    .namespace(common::namespace("config-extremes"))
                    .connect_timeout(connect)
                    .command_timeout(command)
                    .reconnect_backoff(backoff, backoff);
                match Client::new(config) {
                    // Caching fails open whatever the timeouts do to the server calls.
                    Ok(client) => assert_eq!(cached_value(&client, 7).await.unwrap(), 7),
                    Err(Error::Config(message)) => {
                        assert!(connect.is_zero() || command.is_zero(), "{message}");
                        assert!(message.contains("timeout"), "{message}");
                    }
                    Err(other) => panic!("{other:?}"),
                }
            }
        }
    }
}

on_both_backends!(
    lock_builders_take_any_duration,
    redlock_builders_take_any_duration,
    config_builders_take_any_duration,
);
