//! Queue workers under faults: the loop never ends on a Redis outage. Through a server
//! restart (which loses the queue: nothing is persisted) the worker backs off, counts the
//! failures, and runs the jobs pushed once the server answers again; on a path that died
//! silently (blackholed) its wait and its claims time out, and it dials again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis_patterns::queue::{Job, Queue, Worker};

use crate::bounded;
use crate::common::{self, RedisServer, proxy::FaultProxy};

const CONNECT: Duration = Duration::from_millis(400);
const COMMAND: Duration = Duration::from_millis(250);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_outlives_a_server_restart() {
    let server = RedisServer::start();
    let client = crate::client_with(
        &server.url(),
        &common::namespace("queue-restart"),
        CONNECT,
        COMMAND,
    );
    let jobs = Queue::<u64>::new("jobs").client(client.clone());
    let ran = Arc::new(AtomicU64::new(0));
    let counter = ran.clone();
    let worker = Worker::new("jobs", move |_: u64, _: Job| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, std::io::Error>(()) }
    })
    .client(client.clone())
    .spawn()
    .unwrap();
    for n in 0..5 {
        jobs.push(&n).await.unwrap();
    }
    // Completed, not only run: a completion still in flight would die with the server.
    common::eventually("5 jobs completed", || worker.stats().completed == 5).await;
    server.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(worker.stats().backend_errors > 0, "claims fail meanwhile");
    server.restart();
    let pushed = async {
        for _ in 0..100 {
            if jobs.push(&5).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("pushes still fail after the restart");
    };
    bounded(Duration::from_secs(10), pushed).await;
    for n in 6..10 {
        jobs.push(&n).await.unwrap();
    }
    common::eventually("10 jobs completed", || worker.stats().completed == 10).await;
    let stats = bounded(Duration::from_secs(5), worker.shutdown()).await;
    assert_eq!(stats.completed, 10);
    assert_eq!(ran.load(Ordering::SeqCst), 10, "each job ran once");
    assert_eq!(jobs.len().await.unwrap().total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_outlives_a_silent_network() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let ns = common::namespace("queue-blackhole");
    let client = crate::client_with(&proxy.url(), &ns, CONNECT, COMMAND);
    // Pushes go straight to the server.
    let direct = crate::client_with(&server.url(), &ns, CONNECT, COMMAND);
    let jobs = Queue::<u64>::new("jobs").client(direct);
    let ran = Arc::new(AtomicU64::new(0));
    let counter = ran.clone();
    let worker = Worker::new("jobs", move |_: u64, _: Job| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, std::io::Error>(()) }
    })
    .client(client)
    .visibility(Duration::from_secs(2))
    .spawn()
    .unwrap();
    for n in 0..5 {
        jobs.push(&n).await.unwrap();
    }
    common::eventually("5 jobs run", || ran.load(Ordering::SeqCst) == 5).await;
    // The path dies silently: the waiting connection and the shared one time out, and both
    // are dialled again (new connections pass the proxy).
    proxy.blackhole();
    for n in 5..10 {
        jobs.push(&n).await.unwrap();
    }
    // A job whose completion was lost on the dead path runs again once its lease runs out
    // (at least once): every job ends completed.
    common::eventually("10 jobs completed", || worker.stats().completed == 10).await;
    assert!(worker.stats().backend_errors > 0, "the dead path timed out");
    let stats = bounded(Duration::from_secs(5), worker.shutdown()).await;
    assert_eq!(stats.completed, 10);
    assert!(ran.load(Ordering::SeqCst) >= 10);
    assert_eq!(jobs.len().await.unwrap().total(), 0);
}
