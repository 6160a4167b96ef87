//! Rate limits under faults: `on_error` decides (admit or deny) within the timeouts, nothing
//! is left without a TTL, and limits apply again once the fault is gone.

use std::time::Duration;

use redis_patterns::rate_limit::{OnError, RateLimiter};
use redis_patterns::{Client, Config};
use tokio::time::Instant;

use crate::bounded;
use crate::common::{self, RedisServer, proxy::FaultProxy};

fn limiters(client: &Client) -> Vec<RateLimiter> {
    let minute = Duration::from_secs(60);
    vec![
        RateLimiter::fixed_window(3, minute),
        RateLimiter::sliding_window(3, minute),
        RateLimiter::sliding_window_counter(3, minute),
        RateLimiter::token_bucket(3, minute, 3),
        RateLimiter::gcra(3, minute, 3),
    ]
    .into_iter()
    .map(|l| l.client(client.clone()))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_applies_on_error_under_faults_and_recovers() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let ns = common::namespace("limit-faults");
    let command = Duration::from_millis(250);
    let client = Client::new(
        Config::from_url(&proxy.url())
            .unwrap()
            .namespace(&ns)
            .connect_timeout(Duration::from_millis(400))
            .command_timeout(command),
    )
    .unwrap();
    // (fault, persistent: every call meets it until it is lifted, inject, lift)
    type Inject<'a> = (&'a str, bool, Box<dyn Fn() + 'a>, Box<dyn Fn() + 'a>);
    let stall = std::sync::Mutex::new(None);
    let faults: Vec<Inject> = vec![
        (
            "slow network",
            true,
            Box::new(|| proxy.delay(Duration::from_secs(2), Duration::ZERO)),
            Box::new(|| proxy.pass()),
        ),
        (
            "blackhole",
            false,
            Box::new(|| proxy.blackhole()),
            Box::new(|| {}),
        ),
        ("reset", false, Box::new(|| proxy.reset()), Box::new(|| {})),
        (
            "stall",
            true,
            Box::new(|| *stall.lock().unwrap() = Some(server.stall(2))),
            Box::new(|| stall.lock().unwrap().take().unwrap().join().unwrap()),
        ),
        (
            "OOM",
            false,
            Box::new(|| server.out_of_memory(true)),
            Box::new(|| server.out_of_memory(false)),
        ),
        (
            "killed clients and flushed scripts",
            false,
            Box::new(|| {
                server.kill_clients();
                server.script_flush();
            }),
            Box::new(|| {}),
        ),
    ];
    for (round, (fault, persistent, inject, lift)) in faults.iter().enumerate() {
        for limiter in limiters(&client) {
            let key = format!("user-{round}-{:?}", limiter.algorithm());
            inject();
            for policy in [OnError::Allow, OnError::Deny] {
                let limiter = limiter.clone().on_error(policy);
                let started = Instant::now();
                let admitted = bounded(Duration::from_secs(5), limiter.admit(&key, 1)).await;
                let waited = started.elapsed();
                // A persistent fault leaves no decision: `on_error` decides. After a transient
                // one (a reset connection is redialled at once) a real decision may come.
                match (policy, admitted) {
                    (OnError::Allow, Ok(None)) | (OnError::Deny, Err(_)) => {}
                    (_, Ok(Some(_))) if !persistent => {}
                    (_, other) => panic!(
                        "{fault}: {:?} under {policy:?} gave {other:?}",
                        limiter.algorithm()
                    ),
                }
                assert!(
                    waited <= Duration::from_millis(400) + 3 * command + Duration::from_millis(500),
                    "{fault}: a decision waited {waited:?}"
                );
            }
            lift();
            let lifted = Instant::now();
            loop {
                if let Ok(Some(_)) = bounded(Duration::from_secs(5), limiter.admit(&key, 1)).await {
                    break;
                }
                assert!(
                    lifted.elapsed()
                        < Duration::from_millis(400) + 2 * command + Duration::from_secs(1),
                    "{fault}: limits did not apply again after the fault"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert_eq!(server.keys_without_ttl(&ns), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_of_the_wrong_type_is_a_backend_error_not_a_panic() {
    let server = common::server();
    let ns = common::namespace("limit-wrongtype");
    let client = common::client_in(&server.url(), &ns, Duration::from_secs(1));
    for limiter in limiters(&client) {
        let key = format!("{:?}", limiter.algorithm());
        let first = limiter.check(&key, 1).await.unwrap();
        assert!(first.allowed);
        // Overwrite every key the limiter wrote with a list.
        for stored in server.keys(&ns) {
            let mut conn = server.redis();
            let _: () = redis::cmd("DEL").arg(&stored).query(&mut conn).unwrap();
            let _: () = redis::cmd("RPUSH")
                .arg(&stored)
                .arg("x")
                .query(&mut conn)
                .unwrap();
            let _: () = redis::cmd("PEXPIRE")
                .arg(&stored)
                .arg(60_000)
                .query(&mut conn)
                .unwrap();
        }
        let result = limiter.check(&key, 1).await;
        assert!(result.is_err(), "{:?}: {result:?}", limiter.algorithm());
        assert!(
            limiter
                .clone()
                .on_error(OnError::Allow)
                .admit(&key, 1)
                .await
                .is_ok()
        );
        assert!(
            limiter
                .clone()
                .on_error(OnError::Deny)
                .admit(&key, 1)
                .await
                .is_err()
        );
        for stored in server.keys(&ns) {
            let _: () = redis::cmd("DEL")
                .arg(&stored)
                .query(&mut server.redis())
                .unwrap();
        }
    }
}
