//! Keys as the attributes and the runtime API write them: default keys tell methods of
//! different types apart, different templates never share a key, and every key of one call
//! carries the same non-empty hash tag (checked by Redis itself on a cluster-enabled node).

mod common;

use std::time::Duration;

use common::Kind;
use redis_patterns::lock::{Lock, LockError};
use redis_patterns::rate_limit::{RateLimited, RateLimiter};
use redis_patterns::{Client, cached, rate_limited, with_lock};

struct Users {
    client: Client,
}

struct Orders {
    client: Client,
}

impl Users {
    #[cached(ttl = "1m", client = self.client)]
    async fn name(&self, id: u64) -> String {
        format!("user {id}")
    }

    #[rate_limited(limit = 1, window = "1h", client = self.client)]
    async fn ping(&self) -> Result<(), RateLimited> {
        Ok(())
    }

    /// Runs `orders.exclusive()` while holding this method's own default lock.
    #[with_lock(ttl = "10s", client = self.client)]
    async fn exclusive(&self, orders: &Orders) -> Result<(), LockError> {
        orders.exclusive().await
    }
}

impl Orders {
    #[cached(ttl = "1m", client = self.client)]
    async fn name(&self, id: u64) -> String {
        format!("order {id}")
    }

    #[rate_limited(limit = 1, window = "1h", client = self.client)]
    async fn ping(&self) -> Result<(), RateLimited> {
        Ok(())
    }

    #[with_lock(ttl = "10s", client = self.client)]
    async fn exclusive(&self) -> Result<(), LockError> {
        Ok(())
    }
}

fn users_and_orders(kind: Kind, test: &str) -> (Users, Orders) {
    let client = common::client(kind, test);
    let orders = Orders {
        client: client.clone(),
    };
    (Users { client }, orders)
}

async fn same_named_methods_of_two_types_do_not_share_cache_entries(kind: Kind) {
    let (users, orders) = users_and_orders(kind, "default-cache");
    assert_eq!(users.name(7).await, "user 7");
    assert_eq!(orders.name(7).await, "order 7");
    assert_ne!(users.name_key(7), orders.name_key(7));
    assert!(
        users.name_key(7).contains("keys::Users::name:#7"),
        "{}",
        users.name_key(7)
    );
}

async fn same_named_methods_of_two_types_do_not_share_a_rate_limit(kind: Kind) {
    let (users, orders) = users_and_orders(kind, "default-limit");
    assert!(users.ping().await.is_ok());
    assert!(orders.ping().await.is_ok(), "a limit of its own");
    assert!(users.ping().await.is_err(), "the limit still applies");
}

async fn same_named_methods_of_two_types_do_not_share_a_lock(kind: Kind) {
    let (users, orders) = users_and_orders(kind, "default-lock");
    users.exclusive(&orders).await.unwrap();
}

struct Repo<T> {
    client: Client,
    rows: std::marker::PhantomData<T>,
}

impl<T: Sync> Repo<T> {
    #[cached(ttl = "1m", client = self.client)]
    async fn table(&self) -> String {
        std::any::type_name::<T>().to_owned()
    }
}

async fn each_type_argument_of_a_generic_self_type_has_its_own_entries(kind: Kind) {
    let client = common::client(kind, "generic-self");
    let users = Repo::<u8> {
        client: client.clone(),
        rows: std::marker::PhantomData,
    };
    let orders = Repo::<u16> {
        client,
        rows: std::marker::PhantomData,
    };
    assert_eq!(users.table().await, "u8");
    assert_eq!(orders.table().await, "u16");
    assert!(
        users.table_key().ends_with("{keys::Repo%3Cu8%3E::table}"),
        "{}",
        users.table_key()
    );
}

#[cached(key = "a:b:<x>", ttl = "1m", client = client)]
async fn left(client: &Client, x: &str) -> String {
    format!("left {x}")
}

#[cached(key = "a:<y>:c", ttl = "1m", client = client)]
async fn right(client: &Client, y: &str) -> String {
    format!("right {y}")
}

async fn templates_that_render_the_same_text_do_not_share_entries(kind: Kind) {
    let client = common::client(kind, "templates");
    assert_eq!(left(&client, "c").await, "left c");
    assert_eq!(right(&client, "b").await, "right b");
    assert_ne!(left_key(&client, "c"), right_key(&client, "b"));
}

#[rate_limited(key = "api:<user>", limit = 1, window = "1m", client = client)]
async fn api(client: &Client, user: &str) -> Result<(), RateLimited> {
    let _ = user;
    Ok(())
}

async fn a_limiter_key_shares_state_with_the_template_of_its_shape(kind: Kind) {
    let client = common::client(kind, "limiter-shape");
    api(&client, "alice").await.unwrap();
    let limiter = RateLimiter::sliding_window(1, Duration::from_secs(60)).client(client);
    assert!(!limiter.check("api:alice", 1).await.unwrap().allowed);
    assert!(limiter.check("api:bob", 1).await.unwrap().allowed);
}

on_both_backends!(
    same_named_methods_of_two_types_do_not_share_cache_entries,
    same_named_methods_of_two_types_do_not_share_a_rate_limit,
    same_named_methods_of_two_types_do_not_share_a_lock,
    each_type_argument_of_a_generic_self_type_has_its_own_entries,
    templates_that_render_the_same_text_do_not_share_entries,
    a_limiter_key_shares_state_with_the_template_of_its_shape,
);

/// Names and keys that could leave nothing, or too little, between the braces.
const ADVERSARIAL: &[&str] = &["", ":", "::", "{", "}", "{}", "}{", "a}b", "~", "#", " "];

/// The hash tag Redis Cluster hashes: from the first `{` to the next `}`, if not empty.
fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let len = key[open + 1..].find('}')?;
    (len > 0).then(|| &key[open + 1..open + 1 + len])
}

/// Every key on the shared server under `client`'s namespace.
fn keys_of(client: &Client) -> Vec<String> {
    let ns = client.namespace().unwrap();
    let mut conn = common::server().redis();
    redis::cmd("KEYS")
        .arg(format!("{ns}:*"))
        .query(&mut conn)
        .unwrap()
}

/// Asserts that `keys` (all the keys of one call) are several or one, each with a hash tag,
/// all the same, and that Redis puts them in one slot.
fn assert_one_hash_tag(keys: &[String], slots: &mut redis::Connection, what: &str) {
    assert!(!keys.is_empty(), "{what}: no key written");
    let tags: Vec<Option<&str>> = keys.iter().map(|k| hash_tag(k)).collect();
    assert!(tags.iter().all(Option::is_some), "{what}: {keys:?}");
    assert!(tags.windows(2).all(|w| w[0] == w[1]), "{what}: {keys:?}");
    let slot = |key: &String, conn: &mut redis::Connection| -> i64 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(conn)
            .unwrap()
    };
    let first = slot(&keys[0], slots);
    for key in keys {
        assert_eq!(slot(key, slots), first, "{what}: {keys:?}");
    }
}

#[tokio::test]
async fn the_keys_of_a_lock_share_one_slot_whatever_its_name() {
    let node = common::RedisServer::start_with(&["--cluster-enabled", "yes"]);
    let mut slots = node.redis();
    for name in ADVERSARIAL {
        let client = common::client(Kind::Redis, "lock-tag");
        let guard = Lock::new(*name).client(&client).acquire().await.unwrap();
        guard.fencing_token().await.unwrap();
        // A refused attempt marks the lock as awaited.
        let refused = Lock::new(*name).client(&client).acquire().await;
        assert!(refused.is_err(), "{refused:?}");
        let keys = keys_of(&client);
        assert_eq!(
            keys.len(),
            3,
            "the lock, its fencing counter and its waiters' mark: {keys:?}"
        );
        assert_one_hash_tag(&keys, &mut slots, &format!("lock {name:?}"));
        guard.release().await.unwrap();
    }
}

#[tokio::test]
async fn the_key_of_a_rate_limit_has_a_hash_tag_whatever_its_key() {
    let node = common::RedisServer::start_with(&["--cluster-enabled", "yes"]);
    let mut slots = node.redis();
    for key in ADVERSARIAL {
        let client = common::client(Kind::Redis, "limit-tag");
        let limiter =
            RateLimiter::sliding_window(5, Duration::from_secs(60)).client(client.clone());
        limiter.check(key, 1).await.unwrap();
        assert_one_hash_tag(&keys_of(&client), &mut slots, &format!("limit {key:?}"));
    }
}

#[cached(key = "empty:<a>:<b>", ttl = "1m", stampede = "lock", client = client)]
async fn empty_values(client: &Client, a: &str, b: &str) -> String {
    format!("{a}{b}")
}

#[tokio::test]
async fn a_cached_call_with_empty_values_keeps_its_keys_in_one_slot() {
    let node = common::RedisServer::start_with(&["--cluster-enabled", "yes"]);
    let mut slots = node.redis();
    let client = common::client(Kind::Redis, "empty-values");
    empty_values(&client, "", "").await;
    let key = empty_values_key(&client, "", "");
    let keys = vec![key.clone(), format!("{key}:lock")];
    assert_one_hash_tag(&keys, &mut slots, "empty values");
    assert_eq!(keys_of(&client), vec![key]);
}
