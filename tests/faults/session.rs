//! Sessions under faults: they fail closed. Every operation returns a typed error within the
//! timeouts while the server is down, slow or refusing writes; nobody gets in on a session that
//! could not be read; nothing half-written is left; sessions are served again once the fault is
//! gone.

use std::time::Duration;

use redis_patterns::Client;
use redis_patterns::session::{SessionError, Sessions};
use tokio::time::Instant;

use crate::bounded;
use crate::common::{self, RedisServer, proxy::FaultProxy};

const CONNECT: Duration = Duration::from_millis(400);
const COMMAND: Duration = Duration::from_millis(250);

fn client_of(url: &str, ns: &str) -> Client {
    crate::client_with(url, ns, CONNECT, COMMAND)
}

fn store(client: &Client) -> Sessions<Vec<String>> {
    Sessions::new(Duration::from_secs(600), Duration::from_secs(3600)).client(client.clone())
}

/// Every operation fails with `SessionError::Backend`, each within one operation's bound.
async fn every_operation_fails_closed(sessions: &Sessions<Vec<String>>, fault: &str) {
    let id = redis_patterns::session::SessionId::parse(&"0".repeat(64)).unwrap();
    let bound = CONNECT + 2 * COMMAND + Duration::from_millis(500);
    let limit = Duration::from_secs(5);
    let started = Instant::now();
    let created = bounded(limit, sessions.create("alice", &vec![])).await;
    assert!(
        matches!(created, Err(SessionError::Backend(_))),
        "{fault}: {created:?}"
    );
    let loaded = bounded(limit, sessions.load(&id)).await;
    assert!(
        matches!(loaded, Err(SessionError::Backend(_))),
        "{fault}: a load let someone in: {loaded:?}"
    );
    assert!(
        bounded(limit, sessions.touch(&id)).await.is_err(),
        "{fault}"
    );
    assert!(
        bounded(limit, sessions.delete(&id)).await.is_err(),
        "{fault}"
    );
    assert!(
        bounded(limit, sessions.delete_all_for("alice"))
            .await
            .is_err(),
        "{fault}"
    );
    let waited = started.elapsed();
    assert!(
        waited <= 5 * bound,
        "{fault}: five operations waited {waited:?}"
    );
}

async fn served_again(sessions: &Sessions<Vec<String>>) {
    let lifted = Instant::now();
    loop {
        if let Ok(id) = sessions.create("alice", &vec!["x".into()]).await {
            assert_eq!(sessions.load(&id).await.unwrap().unwrap().data, ["x"]);
            return;
        }
        assert!(
            lifted.elapsed() < CONNECT + 2 * COMMAND + Duration::from_secs(1),
            "sessions were not served again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_fail_closed_while_the_server_is_down_and_serve_after_a_restart() {
    let server = RedisServer::start();
    let ns = common::namespace("session-down");
    let client = client_of(&server.url(), &ns);
    let sessions = store(&client);
    let id = sessions.create("alice", &vec![]).await.unwrap();
    server.stop();
    for _ in 0..2 {
        every_operation_fails_closed(&sessions, "server down").await;
    }
    assert!(matches!(
        sessions.load(&id).await,
        Err(SessionError::Backend(_))
    ));
    assert!(sessions.stats().backend_errors >= 10);
    server.restart();
    served_again(&sessions).await;
    assert_eq!(server.keys_without_ttl(&ns), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_fail_closed_on_a_slow_network_and_recover() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let ns = common::namespace("session-slow");
    let client = client_of(&proxy.url(), &ns);
    let sessions = store(&client);
    sessions.create("warm", &vec![]).await.unwrap();
    proxy.delay(Duration::from_secs(2), Duration::ZERO);
    every_operation_fails_closed(&sessions, "slow network").await;
    proxy.pass();
    served_again(&sessions).await;
    assert_eq!(server.keys_without_ttl(&ns), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_refused_for_memory_is_not_handed_out() {
    let server = RedisServer::start();
    let ns = common::namespace("session-oom");
    let client = client_of(&server.url(), &ns);
    let sessions = store(&client);
    let id = sessions.create("alice", &vec!["a".into()]).await.unwrap();
    let mut session = sessions.load(&id).await.unwrap().unwrap();
    server.out_of_memory(true);
    assert!(matches!(
        sessions.create("bob", &vec![]).await,
        Err(SessionError::Backend(_))
    ));
    session.data.push("b".into());
    assert!(sessions.save(&session).await.is_err());
    server.out_of_memory(false);
    assert_eq!(
        sessions.load(&id).await.unwrap().unwrap().data,
        ["a"],
        "unchanged"
    );
    assert_eq!(
        sessions.delete_all_for("bob").await.unwrap(),
        0,
        "no session for bob"
    );
    assert_eq!(
        server.keys(&ns).len(),
        2,
        "alice's session and index: {:?}",
        server.keys(&ns)
    );
    assert_eq!(server.keys_without_ttl(&ns), Vec::<String>::new());
}
