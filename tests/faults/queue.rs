//! Queue workers under faults: the loop never ends on a Redis outage. Through a server
//! restart (which loses the queue: nothing is persisted) the worker backs off, counts the
//! failures, and runs the jobs pushed once the server answers again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis_patterns::queue::{Job, Queue, Worker};

use crate::bounded;
use crate::common::{self, RedisServer};

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
    common::eventually("5 jobs run", || ran.load(Ordering::SeqCst) == 5).await;
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
    common::eventually("10 jobs run", || ran.load(Ordering::SeqCst) == 10).await;
    let stats = bounded(Duration::from_secs(5), worker.shutdown()).await;
    assert_eq!(stats.completed, 10);
    assert_eq!(jobs.len().await.unwrap().total(), 0);
}
