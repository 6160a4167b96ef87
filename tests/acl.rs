//! Redis ACL users: a user restricted to its namespace's keys and the commands redis-patterns
//! uses can run every pattern; a wrong password or a missing permission is a typed error that
//! names the problem and never the secret.

mod common;

use std::time::Duration;

use redis_patterns::lock::{Lock, LockError};
use redis_patterns::rate_limit::RateLimiter;
use redis_patterns::{Client, Config, Error, cached};

/// The ACL rules README's ACL section gives, for the keys of `namespace`.
fn documented_rules(namespace: &str) -> Vec<String> {
    [
        "on",
        "resetkeys",
        "resetchannels",
        "-@all",
        "+@read",
        "+@write",
        "+@scripting",
        "+@connection",
        "+time",
        "-@dangerous",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([format!("~{namespace}:*")])
    .collect()
}

fn create_user(user: &str, password: &str, rules: &[String]) {
    let mut conn = common::server().redis();
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg(user)
        .arg("reset")
        .arg(format!(">{password}"))
        .arg(rules)
        .query::<()>(&mut conn)
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
