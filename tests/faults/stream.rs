//! Stream consumers under faults: the loop never ends on a Redis outage. Through a server
//! restart (which loses the stream and its group: nothing is persisted) the consumer backs
//! off, counts the failures, and handles the events appended once the server answers again,
//! recreating its group; on a path that died silently (blackholed) its blocked read times out
//! and it dials again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis_patterns::Client;
use redis_patterns::stream::{Consumer, ConsumerHandle, Delivery, EventStream};

use crate::bounded;
use crate::common::{self, RedisServer, proxy::FaultProxy};

const CONNECT: Duration = Duration::from_millis(400);
const COMMAND: Duration = Duration::from_millis(250);

fn consumer(client: &Client, handled: Arc<AtomicU64>) -> ConsumerHandle {
    Consumer::new("orders", "billing", move |_: u64, _: Delivery| {
        handled.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, std::io::Error>(()) }
    })
    .client(client.clone())
    .visibility(Duration::from_secs(2))
    .spawn()
    .unwrap()
}

/// Waits up to 10 s for `count` to reach `n`.
async fn reaches(count: &AtomicU64, n: u64) {
    for _ in 0..1_000 {
        if count.load(Ordering::SeqCst) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} of {n} handled after 10 s", count.load(Ordering::SeqCst));
}

async fn append_all(orders: &EventStream<u64>, ids: std::ops::Range<u64>) {
    for id in ids {
        orders.append(&id).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_outlives_a_server_restart() {
    let server = RedisServer::start();
    let client = crate::client_with(
        &server.url(),
        &common::namespace("stream-restart"),
        CONNECT,
        COMMAND,
    );
    let orders = EventStream::<u64>::new("orders").client(client.clone());
    let handled = Arc::new(AtomicU64::new(0));
    let billing = consumer(&client, handled.clone());
    append_all(&orders, 0..10).await;
    reaches(&handled, 10).await;
    server.stop();
    // Down for a while: reads fail, and are retried with a backoff.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(billing.stats().backend_errors > 0);
    server.restart();
    // The restarted server is empty: the first append recreates the stream, and the consumer
    // its group (reading from the oldest event), once it hears NOGROUP.
    let appended = async {
        for _ in 0..100 {
            if orders.append(&10).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("appends still fail after the restart");
    };
    bounded(Duration::from_secs(10), appended).await;
    append_all(&orders, 11..20).await;
    reaches(&handled, 20).await;
    let stats = bounded(Duration::from_secs(5), billing.shutdown()).await;
    assert_eq!(stats.handled, 20);
    assert_eq!(orders.pending("billing").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_outlives_a_silent_network() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let ns = common::namespace("stream-blackhole");
    let client = crate::client_with(&proxy.url(), &ns, CONNECT, COMMAND);
    // Appends go straight to the server.
    let direct = crate::client_with(&server.url(), &ns, CONNECT, COMMAND);
    let orders = EventStream::<u64>::new("orders").client(direct);
    let handled = Arc::new(AtomicU64::new(0));
    let billing = consumer(&client, handled.clone());
    append_all(&orders, 0..5).await;
    reaches(&handled, 5).await;
    // The path dies silently: the blocked read and the shared connection time out, and both
    // are dialled again (new connections pass the proxy).
    proxy.blackhole();
    append_all(&orders, 5..10).await;
    reaches(&handled, 10).await;
    assert!(
        billing.stats().backend_errors > 0,
        "the dead path timed out"
    );
    for _ in 0..500 {
        if orders.pending("billing").await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = bounded(Duration::from_secs(5), billing.shutdown()).await;
    assert_eq!(stats.handled, 10);
    assert_eq!(orders.pending("billing").await.unwrap(), 0);
}
