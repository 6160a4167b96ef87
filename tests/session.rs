//! Sessions on a real redis-server, on `mem://` (and with the root features on the cluster and
//! behind Sentinel, where a user's sessions live in many slots): the life of a session,
//! concurrent saves from separate clients, sliding and absolute expiry, log out everywhere,
//! rotation, and bad input.

mod common;

use std::time::Duration;

use common::Kind;
use redis_patterns::session::{SessionError, SessionId, Sessions};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
struct Cart {
    items: Vec<String>,
}

fn sessions(client: &redis_patterns::Client) -> Sessions<Cart> {
    Sessions::new(Duration::from_secs(1800), Duration::from_secs(86_400)).client(client.clone())
}

async fn a_session_is_created_loaded_saved_and_deleted(kind: Kind) {
    let client = common::client(kind, "session-life");
    let store = sessions(&client);
    let id = store.create("alice", &Cart::default()).await.unwrap();
    let mut session = store.load(&id).await.unwrap().expect("created");
    assert_eq!((session.user(), session.version()), ("alice", 1));
    session.data.items.push("lamp".into());
    assert_eq!(store.save(&session).await.unwrap(), 2);
    let reloaded = store.load(&id).await.unwrap().unwrap();
    assert_eq!(reloaded.data.items, ["lamp"]);
    assert_eq!(reloaded.version(), 2);
    assert!(store.touch(&id).await.unwrap());
    assert!(store.delete(&id).await.unwrap());
    assert!(!store.delete(&id).await.unwrap());
    assert!(store.load(&id).await.unwrap().is_none());
    assert!(!store.touch(&id).await.unwrap());
    // A save after the delete does not bring the session back.
    assert!(matches!(
        store.save(&reloaded).await,
        Err(SessionError::Gone)
    ));
    assert!(store.load(&id).await.unwrap().is_none());
    let stats = store.stats();
    assert_eq!((stats.created, stats.saved, stats.deleted), (1, 1, 1));
    assert_eq!((stats.loaded, stats.missing), (2, 2));
}

async fn unknown_and_forged_ids_are_no_session(kind: Kind) {
    let client = common::client(kind, "session-forged");
    let store = sessions(&client);
    let real = store.create("alice", &Cart::default()).await.unwrap();
    // Another id of the right shape, and one differing from a real id in one digit.
    let mut near = real.expose().to_owned();
    let last = if near.ends_with('0') { "1" } else { "0" };
    near.replace_range(63.., last);
    for text in [&"0".repeat(64), &near] {
        let id = SessionId::parse(text).unwrap();
        assert!(store.load(&id).await.unwrap().is_none(), "{text}");
    }
    for text in [
        "",
        "not-an-id",
        &real.expose().to_uppercase(),
        &format!("{}x", real.expose()),
    ] {
        assert!(SessionId::parse(text).is_none(), "{text}");
    }
    assert!(store.load(&real).await.unwrap().is_some());
}

async fn concurrent_saves_from_separate_clients_never_lose_a_write(kind: Kind) {
    let ns = common::namespace("session-concurrent");
    let clients = common::clients(kind, &ns, 4);
    let id = sessions(&clients[0])
        .create("alice", &Cart::default())
        .await
        .unwrap();
    // 4 clients each add 5 items, reloading and retrying on conflicts.
    let tasks = clients.iter().enumerate().map(|(c, client)| {
        let (store, id) = (sessions(client), id.clone());
        async move {
            let mut conflicts = 0;
            for i in 0..5 {
                loop {
                    let mut session = store.load(&id).await.unwrap().unwrap();
                    session.data.items.push(format!("{c}-{i}"));
                    match store.save(&session).await {
                        Ok(_) => break,
                        Err(SessionError::Conflict { loaded, current }) => {
                            assert!(current > loaded);
                            conflicts += 1;
                        }
                        Err(other) => panic!("{other}"),
                    }
                }
            }
            conflicts
        }
    });
    let conflicts: u32 = futures::future::join_all(tasks).await.into_iter().sum();
    let session = sessions(&clients[0]).load(&id).await.unwrap().unwrap();
    let mut items = session.data.items.clone();
    items.sort();
    let mut expected: Vec<String> = (0..4)
        .flat_map(|c| (0..5).map(move |i| format!("{c}-{i}")))
        .collect();
    expected.sort();
    assert_eq!(
        items, expected,
        "every write kept ({conflicts} conflicts retried)"
    );
    assert_eq!(session.version(), 21);
}

async fn idle_sessions_end_and_use_never_extends_the_absolute_lifetime(kind: Kind) {
    let client = common::client(kind, "session-expiry");
    // Each step below keeps about 100 ms from the edge it checks.
    let store = Sessions::<Cart>::new(Duration::from_millis(400), Duration::from_millis(1200))
        .client(client.clone());
    let idle = store.create("alice", &Cart::default()).await.unwrap();
    let busy = store.create("alice", &Cart::default()).await.unwrap();
    let ends = store.load(&busy).await.unwrap().unwrap().ends();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(store.touch(&busy).await.unwrap(), "kept alive by use");
    }
    // About 750 ms in.
    assert!(
        store.load(&idle).await.unwrap().is_none(),
        "idle past 400 ms"
    );
    assert!(store.load(&busy).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        store.touch(&busy).await.unwrap(),
        "still before its absolute end"
    );
    // About 1,300 ms in: used 250 ms ago (within the idle timeout), past the absolute end.
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(
        store.load(&busy).await.unwrap().is_none(),
        "used all along, yet past its absolute end ({ends:?})"
    );
}

async fn logging_out_everywhere_ends_every_session_of_the_user_only(kind: Kind) {
    let ns = common::namespace("session-everywhere");
    let clients = common::clients(kind, &ns, 2);
    let store = sessions(&clients[0]);
    let mut alice = Vec::new();
    for _ in 0..6 {
        alice.push(
            store
                .create("alice@example.com", &Cart::default())
                .await
                .unwrap(),
        );
    }
    let bob = store.create("bob", &Cart::default()).await.unwrap();
    assert!(
        store.delete(&alice[0]).await.unwrap(),
        "one logged out first"
    );
    let other = sessions(&clients[1]);
    assert_eq!(other.delete_all_for("alice@example.com").await.unwrap(), 5);
    for id in &alice {
        assert!(store.load(id).await.unwrap().is_none());
    }
    assert!(
        store.load(&bob).await.unwrap().is_some(),
        "another user's session"
    );
    assert_eq!(other.delete_all_for("alice@example.com").await.unwrap(), 0);
    let again = store
        .create("alice@example.com", &Cart::default())
        .await
        .unwrap();
    assert!(
        store.load(&again).await.unwrap().is_some(),
        "a new login after it"
    );
}

async fn rotation_gives_a_new_id_and_kills_the_old_one(kind: Kind) {
    let client = common::client(kind, "session-rotate");
    let store = sessions(&client);
    let old = store
        .create(
            "alice",
            &Cart {
                items: vec!["lamp".into()],
            },
        )
        .await
        .unwrap();
    let before = store.load(&old).await.unwrap().unwrap();
    let new = store.rotate(&old).await.unwrap().expect("rotated");
    assert_ne!(new, old);
    assert!(
        store.load(&old).await.unwrap().is_none(),
        "the old id is dead"
    );
    let after = store.load(&new).await.unwrap().unwrap();
    assert_eq!(after.data, before.data);
    assert_eq!(
        (after.created(), after.ends()),
        (before.created(), before.ends())
    );
    assert!(matches!(store.save(&before).await, Err(SessionError::Gone)));
    assert_eq!(store.rotate(&old).await.unwrap(), None);
    assert_eq!(
        store.delete_all_for("alice").await.unwrap(),
        1,
        "the new id is indexed"
    );
}

async fn oversized_data_is_refused_before_redis(kind: Kind) {
    let client = common::client(kind, "session-large");
    let store = sessions(&client).max_size(100);
    let big = Cart {
        items: vec!["x".repeat(200)],
    };
    let refused = store.create("alice", &big).await;
    assert!(
        matches!(refused, Err(SessionError::TooLarge { size, limit: 100 }) if size > 200),
        "{refused:?}"
    );
    let id = store.create("alice", &Cart::default()).await.unwrap();
    let mut session = store.load(&id).await.unwrap().unwrap();
    session.data = big;
    assert!(matches!(
        store.save(&session).await,
        Err(SessionError::TooLarge { .. })
    ));
    assert_eq!(
        store.load(&id).await.unwrap().unwrap().data,
        Cart::default(),
        "unchanged"
    );
    assert_eq!(store.stats().too_large, 2);
    // Data stored under another type does not deserialize: an error, not a panic.
    let numbers = Sessions::<u64>::new(Duration::from_secs(60), Duration::from_secs(60))
        .client(client.clone());
    assert!(matches!(
        numbers.load(&id).await,
        Err(SessionError::Data(_))
    ));
}

on_both_backends!(
    a_session_is_created_loaded_saved_and_deleted,
    unknown_and_forged_ids_are_no_session,
    concurrent_saves_from_separate_clients_never_lose_a_write,
    idle_sessions_end_and_use_never_extends_the_absolute_lifetime,
    logging_out_everywhere_ends_every_session_of_the_user_only,
    rotation_gives_a_new_id_and_kills_the_old_one,
    oversized_data_is_refused_before_redis,
);

/// Every key sessions write has a TTL, and Redis never sees an id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_keys_expire_and_never_contain_the_id() {
    let client = common::client(Kind::Redis, "session-keys");
    let store = sessions(&client);
    let id = store.create("alice", &Cart::default()).await.unwrap();
    let ns = client.namespace().unwrap();
    let server = common::server();
    let keys = server.keys(ns);
    assert_eq!(keys.len(), 2, "the session and the user's index: {keys:?}");
    assert!(keys.iter().all(|k| !k.contains(id.expose())), "{keys:?}");
    assert_eq!(server.keys_without_ttl(ns), Vec::<String>::new());
}

/// A login pipelines the session and its index entry (one round trip on one server): with the
/// server's scripts forgotten (a restart, a failover), both are loaded and run in order, and
/// the session is listed for "log out everywhere".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_after_the_scripts_were_flushed_is_created_and_indexed() {
    let client = common::client(Kind::Redis, "session-noscript");
    let store = sessions(&client);
    for _ in 0..3 {
        common::server().script_flush();
        let id = store.create("alice", &Cart::default()).await.unwrap();
        assert!(store.load(&id).await.unwrap().is_some());
    }
    let ns = client.namespace().unwrap();
    assert_eq!(
        common::server().keys(ns).len(),
        4,
        "three sessions and the index"
    );
    assert_eq!(store.delete_all_for("alice").await.unwrap(), 3);
    assert_eq!(common::server().keys(ns), Vec::<String>::new());
}
