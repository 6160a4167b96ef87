//! Redis ACL users: a user restricted to its namespace's keys and the commands redis-patterns
//! uses can run every pattern; a wrong password or a missing permission is a typed error that
//! names the problem and never the secret.

mod common;

use std::time::Duration;

use futures::StreamExt;
use redis_patterns::lock::{Lock, LockError};
use redis_patterns::pubsub::{Notice, Pattern, Topic};
use redis_patterns::rate_limit::RateLimiter;
use redis_patterns::{Client, Config, Error, cached};

/// The ACL rules README's ACL section gives, for the keys and channels of `namespace`.
fn documented_rules(namespace: &str) -> Vec<String> {
    key_rules(namespace)
        .into_iter()
        .chain([format!("&{namespace}:*")])
        .collect()
}

/// The documented rules without a channel pattern: no channel is allowed.
fn key_rules(namespace: &str) -> Vec<String> {
    [
        "on",
        "resetkeys",
        "resetchannels",
        "-@all",
        "+@read",
        "+@write",
        "+@scripting",
        "+@connection",
        "+@pubsub",
        "+time",
        "-@dangerous",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([format!("~{namespace}:*")])
    .collect()
}

fn create_user(user: &str, password: &str, rules: &[String]) {
    let mut all = vec!["reset".to_owned(), format!(">{password}")];
    all.extend_from_slice(rules);
    set_user(user, &all);
}

/// `ACL SETUSER user rules…` on the shared server.
fn set_user(user: &str, rules: &[String]) {
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg(user)
        .arg(rules)
        .query::<()>(&mut common::server().redis())
        .expect("ACL SETUSER");
}

fn client_as(user: &str, password: &str, namespace: &str) -> Client {
    let config = Config::from_url(&common::server().url())
        .unwrap()
        .username(user)
        .password(password)
        .namespace(namespace)
        .command_timeout(Duration::from_secs(2));
    Client::new(config).unwrap()
}

#[cached(key = "profile:<id>", ttl = "1m", stampede = "lock", client = client)]
async fn profile(client: &Client, id: u32) -> Result<String, String> {
    Ok(format!("profile {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_restricted_to_its_namespace_runs_every_pattern() {
    let ns = common::namespace("acl-ok");
    let user = format!("user-{ns}");
    create_user(&user, "correct horse", &documented_rules(&ns));
    let client = client_as(&user, "correct horse", &ns);
    client.connect().await.unwrap();

    assert_eq!(profile(&client, 1).await.unwrap(), "profile 1");
    assert_eq!(profile(&client, 1).await.unwrap(), "profile 1");
    let stats = client.cache_stats();
    assert_eq!((stats.hits, stats.backend_errors), (1, 0), "{stats:?}");
    profile_invalidate(&client, 1).await.unwrap();

    let guard = Lock::new("acl-job")
        .client(&client)
        .acquire()
        .await
        .unwrap();
    guard.release().await.unwrap();

    let minute = Duration::from_secs(60);
    for limiter in [
        RateLimiter::fixed_window(5, minute),
        RateLimiter::sliding_window(5, minute),
        RateLimiter::sliding_window_counter(5, minute),
        RateLimiter::token_bucket(5, minute, 5),
        RateLimiter::gcra(5, minute, 5),
    ] {
        let limiter = limiter.client(client.clone());
        assert!(limiter.check("acl:alice", 1).await.unwrap().allowed);
    }
    assert!(common::server().keys_without_ttl(&ns).is_empty());

    // Pub/sub on the namespace's channels: plain, sharded and by pattern (Redis compares a
    // pattern subscription with the user's channel patterns literally: `*` is `&ns:*`).
    let plain = Topic::<u64>::new("news").client(client.clone());
    let sharded = Topic::<u64>::new("prices").sharded().client(client.clone());
    let mut by_plain = plain.subscribe().await.unwrap();
    let mut by_shard = sharded.subscribe().await.unwrap();
    let mut by_pattern = Pattern::<u64>::new("*")
        .client(client.clone())
        .subscribe()
        .await
        .unwrap();
    assert_eq!(plain.publish(&1).await.unwrap(), 2);
    assert_eq!(sharded.publish(&2).await.unwrap(), 1);
    assert_eq!(received(&mut by_plain).await, 1);
    assert_eq!(received(&mut by_shard).await, 2);
    assert_eq!(received(&mut by_pattern).await.value, 1);
}

async fn received<T: std::fmt::Debug>(s: &mut redis_patterns::pubsub::Subscription<T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("a message within 5 s")
        .expect("the subscription goes on")
        .unwrap()
}

/// A channel the user may not use is refused at once with a permission error naming the
/// fix; the client's other subscriptions are not disturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_outside_the_users_channels_is_refused_and_the_others_go_on() {
    let ns = common::namespace("acl-channels");
    let user = format!("user-{ns}");
    let rules: Vec<String> = key_rules(&ns)
        .into_iter()
        .chain([format!("&{ns}:open*")])
        .collect();
    create_user(&user, "pw", &rules);
    let client = client_as(&user, "pw", &ns);
    let open = Topic::<u64>::new("open").client(client.clone());
    let mut s = open.subscribe().await.unwrap();
    // An allowed and a refused topic subscribed at once: only the refused one fails.
    let (open_1, closed_1) = (
        Topic::<u64>::new("open-1").client(client.clone()),
        Topic::<u64>::new("closed-1").client(client.clone()),
    );
    let (allowed, refused) = tokio::join!(open_1.subscribe(), closed_1.subscribe());
    let mut allowed = allowed.unwrap();
    assert!(matches!(refused, Err(Error::Permission(_))), "{refused:?}");
    for closed in [
        Topic::<u64>::new("closed").client(client.clone()),
        Topic::<u64>::new("closed").sharded().client(client.clone()),
    ] {
        let started = std::time::Instant::now();
        match closed.subscribe().await {
            Err(Error::Permission(message)) => {
                assert!(message.contains("NOPERM"), "{message}");
                assert!(message.contains("channel"), "says what to grant: {message}");
            }
            other => panic!("expected a permission error, got {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "refused, not timed out"
        );
    }
    let mut sharded_open = Topic::<u64>::new("open-s")
        .sharded()
        .client(client.clone())
        .subscribe()
        .await
        .unwrap();
    let mut pattern = Pattern::<u64>::new("open*")
        .client(client.clone())
        .subscribe()
        .await
        .unwrap();
    open.publish(&7).await.unwrap();
    assert_eq!(
        received(&mut s).await,
        7,
        "no renewal: the connection went on"
    );
    assert_eq!(received(&mut pattern).await.value, 7);
    open_1.publish(&9).await.unwrap();
    assert_eq!(received(&mut allowed).await, 9);
    Topic::<u64>::new("open-s")
        .sharded()
        .client(client.clone())
        .publish(&8)
        .await
        .unwrap();
    assert_eq!(received(&mut sharded_open).await, 8);
    assert_eq!(open.stats().resubscribed, 0);
}

/// A permission revoked while subscribed: Redis drops the subscription's connection, the
/// renewal is refused, and the stream says why last, then ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_channel_permission_ends_the_subscription_saying_why() {
    let ns = common::namespace("acl-revoked");
    let user = format!("user-{ns}");
    create_user(&user, "pw", &documented_rules(&ns));
    let client = client_as(&user, "pw", &ns);
    let topic = Topic::<u64>::new("alerts").client(client.clone());
    let mut s = topic.subscribe().await.unwrap();
    topic.publish(&1).await.unwrap();
    assert_eq!(received(&mut s).await, 1);
    set_user(&user, &["resetchannels".to_owned()]);
    let mut items = Vec::new();
    loop {
        let item = tokio::time::timeout(Duration::from_secs(10), s.next())
            .await
            .expect("the stream goes on, or ends, within 10 s");
        match item {
            Some(item) => items.push(item),
            None => break,
        }
    }
    match items.last() {
        Some(Err(Notice::Refused(Error::Permission(message)))) => {
            assert!(message.contains("channel"), "{message}");
        }
        other => panic!("expected the refusal last, got {other:?} of {items:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_an_authentication_error_without_the_secret() {
    let ns = common::namespace("acl-wrong-password");
    let user = format!("user-{ns}");
    create_user(&user, "the right one", &documented_rules(&ns));
    let client = client_as(&user, "hunter2-wrong", &ns);
    let error = client.connect().await.expect_err("the password is wrong");
    assert!(matches!(error, Error::Authentication(_)), "{error:?}");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("password"), "says what to check: {shown}");
    // Cached functions still answer (fail open); locks fail closed with the same cause.
    assert_eq!(profile(&client, 3).await.unwrap(), "profile 3");
    let lock = Lock::new("acl-job").client(&client).acquire().await;
    assert!(
        matches!(lock, Err(LockError::Backend(Error::Authentication(_)))),
        "{lock:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_permission_is_a_permission_error_naming_it() {
    let ns = common::namespace("acl-no-scripts");
    let user = format!("user-{ns}");
    let rules: Vec<String> = documented_rules(&ns)
        .into_iter()
        .chain(["-@scripting".to_owned()])
        .collect();
    create_user(&user, "pw", &rules);
    let client = client_as(&user, "pw", &ns);
    client.connect().await.unwrap();
    // An uncontended acquisition is a plain `SET NX PX`; the release is a script.
    let guard = Lock::new("acl-job")
        .client(&client)
        .ttl(Duration::from_secs(5))
        .acquire()
        .await
        .unwrap();
    match guard.release().await {
        Err(LockError::Backend(Error::Permission(message))) => {
            assert!(message.to_lowercase().contains("evalsha"), "{message}");
        }
        other => panic!("expected a permission error, got {other:?}"),
    }

    // Keys outside the user's pattern: the namespace must match the ACL's key pattern.
    let elsewhere = client_as(&user, "pw", &format!("{ns}-elsewhere"));
    let error = profile_invalidate(&elsewhere, 1).await.unwrap_err();
    assert!(matches!(error, Error::Permission(_)), "{error:?}");
    assert!(error.to_string().contains("README"), "{error}");
}
