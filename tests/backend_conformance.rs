//! One conformance suite for the storage operations every pattern is built from, run against
//! a real redis-server and against `mem://`: both backends must agree on TTLs, `NX`
//! semantics and owner-checked unlocking.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::Kind;
use redis_patterns::__private::Probe;

fn key(client: &redis_patterns::Client, name: &str) -> String {
    format!("{}:{{{name}}}", client.namespace().unwrap())
}

async fn get_set_del(kind: Kind) {
    let client = common::client(kind, "get-set-del");
    let b = client.__backend();
    let k = key(&client, "k");
    assert_eq!(b.get(&k).await.unwrap(), None);
    b.set(&k, b"v1".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(b.get(&k).await.unwrap(), Some(Bytes::from_static(b"v1")));
    b.set(&k, b"v2".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        b.get(&k).await.unwrap(),
        Some(Bytes::from_static(b"v2")),
        "SET overwrites"
    );
    assert!(b.del(&k).await.unwrap());
    assert!(
        !b.del(&k).await.unwrap(),
        "deleting a missing key reports false"
    );
    assert_eq!(b.get(&k).await.unwrap(), None);
    // Binary-safe values.
    let binary: Vec<u8> = (0..=255).collect();
    b.set(&k, binary.clone(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(b.get(&k).await.unwrap().unwrap(), binary);
}

async fn values_expire_with_their_ttl(kind: Kind) {
    let client = common::client(kind, "expiry");
    let b = client.__backend();
    let k = key(&client, "k");
    b.set(&k, b"v".to_vec(), Duration::from_millis(200))
        .await
        .unwrap();
    let ttl = b.pttl(&k).await.unwrap().unwrap();
    assert!(
        ttl > Duration::ZERO && ttl <= Duration::from_millis(200),
        "{ttl:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.get(&k).await.unwrap(), None);
    assert_eq!(b.pttl(&k).await.unwrap(), None);
    assert!(!b.del(&k).await.unwrap(), "an expired key is gone");
}

async fn get_or_lock_reads_or_takes_the_lock_exclusively(kind: Kind) {
    let client = common::client(kind, "get-or-lock");
    let b = client.__backend();
    let (k, lock) = (key(&client, "k"), format!("{}:lock", key(&client, "k")));
    let ttl = Duration::from_secs(10);
    assert_eq!(
        b.get_or_lock(&k, &lock, "a", ttl).await.unwrap(),
        Probe::Acquired
    );
    assert_eq!(
        b.get_or_lock(&k, &lock, "b", ttl).await.unwrap(),
        Probe::Held
    );
    assert_eq!(
        b.get_or_lock(&k, &lock, "a", ttl).await.unwrap(),
        Probe::Held,
        "NX: not even the owner takes it twice"
    );
    b.set(&k, b"v".to_vec(), ttl).await.unwrap();
    assert_eq!(
        b.get_or_lock(&k, &lock, "b", ttl).await.unwrap(),
        Probe::Value(Bytes::from_static(b"v"))
    );
}

async fn locks_expire_with_their_ttl(kind: Kind) {
    let client = common::client(kind, "lock-expiry");
    let b = client.__backend();
    let (k, lock) = (key(&client, "k"), format!("{}:lock", key(&client, "k")));
    let short = Duration::from_millis(150);
    assert_eq!(
        b.get_or_lock(&k, &lock, "a", short).await.unwrap(),
        Probe::Acquired
    );
    let ttl = b.pttl(&lock).await.unwrap().unwrap();
    assert!(ttl <= short, "{ttl:?}");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        b.get_or_lock(&k, &lock, "b", short).await.unwrap(),
        Probe::Acquired
    );
}

async fn unlock_only_releases_the_owners_lock(kind: Kind) {
    let client = common::client(kind, "unlock");
    let b = client.__backend();
    let (k, lock) = (key(&client, "k"), format!("{}:lock", key(&client, "k")));
    let ttl = Duration::from_secs(10);
    b.get_or_lock(&k, &lock, "owner", ttl).await.unwrap();
    assert!(!b.unlock(&lock, "intruder").await.unwrap());
    assert_eq!(
        b.get_or_lock(&k, &lock, "x", ttl).await.unwrap(),
        Probe::Held
    );
    assert!(b.unlock(&lock, "owner").await.unwrap());
    assert!(!b.unlock(&lock, "owner").await.unwrap(), "already released");
    assert_eq!(
        b.get_or_lock(&k, &lock, "x", ttl).await.unwrap(),
        Probe::Acquired
    );
}

async fn set_and_unlock_stores_and_releases_only_its_own_lock(kind: Kind) {
    let client = common::client(kind, "set-and-unlock");
    let b = client.__backend();
    let (k, lock) = (key(&client, "k"), format!("{}:lock", key(&client, "k")));
    let ttl = Duration::from_secs(10);
    // Our lease expired and somebody else took the lock: we store, but keep their lock.
    b.get_or_lock(&k, &lock, "new-owner", ttl).await.unwrap();
    let released = b
        .set_and_unlock(&k, b"v".to_vec(), ttl, &lock, "old-owner")
        .await
        .unwrap();
    assert!(!released);
    assert_eq!(b.get(&k).await.unwrap(), Some(Bytes::from_static(b"v")));
    assert!(
        b.pttl(&lock).await.unwrap().is_some(),
        "the other owner's lock survives"
    );
    let released = b
        .set_and_unlock(
            &k,
            b"w".to_vec(),
            Duration::from_millis(500),
            &lock,
            "new-owner",
        )
        .await
        .unwrap();
    assert!(released);
    assert_eq!(b.pttl(&lock).await.unwrap(), None);
    let ttl = b.pttl(&k).await.unwrap().unwrap();
    assert!(
        ttl <= Duration::from_millis(500),
        "the value got the new TTL: {ttl:?}"
    );
}

async fn independent_clients_share_one_store(kind: Kind) {
    let ns = common::namespace("shared-store");
    let clients = common::clients(kind, &ns, 2);
    let k = key(&clients[0], "k");
    let lock = format!("{k}:lock");
    let ttl = Duration::from_secs(10);
    assert_eq!(
        clients[0]
            .__backend()
            .get_or_lock(&k, &lock, "a", ttl)
            .await
            .unwrap(),
        Probe::Acquired
    );
    assert_eq!(
        clients[1]
            .__backend()
            .get_or_lock(&k, &lock, "b", ttl)
            .await
            .unwrap(),
        Probe::Held
    );
}

on_both_backends!(
    get_set_del,
    values_expire_with_their_ttl,
    get_or_lock_reads_or_takes_the_lock_exclusively,
    locks_expire_with_their_ttl,
    unlock_only_releases_the_owners_lock,
    set_and_unlock_stores_and_releases_only_its_own_lock,
    independent_clients_share_one_store,
);

#[tokio::test]
async fn redis_keys_of_one_call_share_a_hash_slot() {
    // Checked by Redis itself, on a cluster-enabled node.
    let node = common::RedisServer::start_with(&["--cluster-enabled", "yes"]);
    let mut conn = node.redis();
    let client = common::client(Kind::Redis, "slots");
    let k = key(&client, "product:42");
    let mut slot = |key: &str| -> i64 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut conn)
            .unwrap()
    };
    let (value, lock, bare) = (slot(&k), slot(&format!("{k}:lock")), slot("{product:42}"));
    assert_eq!(value, lock);
    assert_eq!(value, bare);
}
