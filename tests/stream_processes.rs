//! Stream consumers in real processes (this test binary re-run as children): four processes
//! share 10,000 events, each handled and acknowledged once with none left pending; and a
//! process killed with SIGKILL in the middle of a handler loses its events to another process
//! after the visibility timeout. On a real redis-server, and with the root feature `cluster`
//! on the binary's Redis Cluster.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::children::{self, print, read_until};
use redis_patterns::stream::{Consumer, Delivery, EventStream};
use redis_patterns::{Client, Config};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone)]
struct Order {
    id: u64,
    /// The child's handler hangs on an order marked `stall` at its first delivery.
    stall: bool,
}

fn spawn(
    url: &str,
    ns: &str,
    n: usize,
    visibility_ms: u64,
) -> (
    Vec<children::Process>,
    std::sync::mpsc::Receiver<(usize, String)>,
) {
    let value = format!("{url} {ns} {visibility_ms}");
    children::spawn("child_consumer", "STREAM_CHILD", &value, n)
}

fn client(url: &str, ns: &str) -> Client {
    let config = Config::from_url(url)
        .unwrap()
        .namespace(ns)
        .command_timeout(Duration::from_secs(2));
    Client::new(config).unwrap()
}

async fn append(orders: &EventStream<Order>, ids: std::ops::Range<u64>) {
    let tasks: Vec<_> = ids
        .map(|id| {
            let orders = orders.clone();
            tokio::spawn(async move { orders.append(&Order { id, stall: false }).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// `handled <id> <deliveries>`.
fn handled(words: &[&str]) -> Option<(u64, u64)> {
    match words {
        ["handled", id, deliveries] => Some((id.parse().ok()?, deliveries.parse().ok()?)),
        _ => None,
    }
}

async fn four_processes_share_the_events_each_handled_and_acknowledged_once(url: String) {
    let ns = common::namespace("stream-processes");
    let orders = EventStream::<Order>::new("orders").client(client(&url, &ns));
    let (mut processes, lines) = spawn(&url, &ns, 4, 30_000);
    append(&orders, 0..10_000).await;
    let mut runs: HashMap<u64, u64> = HashMap::new();
    let mut by_process = [0u64; 4];
    read_until(&lines, |index, words| {
        if let Some((id, deliveries)) = handled(words) {
            assert_eq!(deliveries, 1, "no failure, no crash: one delivery");
            *runs.entry(id).or_default() += 1;
            by_process[index] += 1;
        }
        runs.len() == 10_000
    });
    assert!(runs.values().all(|&n| n == 1), "an event handled twice");
    assert!(
        by_process.iter().all(|&n| n > 0),
        "every process took a share: {by_process:?}"
    );
    // A graceful stop of each: their acknowledgements are written before they exit.
    for process in &mut processes {
        process.ask_to_stop();
    }
    let mut acked = 0;
    let mut stopped = HashSet::new();
    read_until(&lines, |index, words| {
        if let ["acked", n] = words {
            acked += n.parse::<u64>().unwrap();
            stopped.insert(index);
        }
        stopped.len() == 4
    });
    for process in &mut processes {
        process.stop();
    }
    assert_eq!(acked, 10_000, "each event acknowledged exactly once");
    assert_eq!(orders.pending("billing").await.unwrap(), 0);
}

async fn a_killed_processs_events_are_handled_by_another_after_the_visibility_timeout(url: String) {
    let ns = common::namespace("stream-kill");
    let orders = EventStream::<Order>::new("orders").client(client(&url, &ns));
    let (mut processes, lines) = spawn(&url, &ns, 2, 1_000);
    orders.append(&Order { id: 0, stall: true }).await.unwrap();
    let mut stalled = None;
    read_until(&lines, |index, words| {
        stalled = Some(index).filter(|_| words == ["stalled"]);
        stalled.is_some()
    });
    let stalled = stalled.unwrap();
    // More events while the stalled process still reads (and holds some).
    append(&orders, 1..200).await;
    let killed_at = Instant::now();
    processes[stalled].child.kill().unwrap();
    processes[stalled].child.wait().unwrap();
    let survivor = 1 - stalled;
    let mut seen = HashSet::new();
    let mut redelivered = None;
    read_until(&lines, |index, words| {
        if let Some((id, deliveries)) = handled(words) {
            seen.insert(id);
            if id == 0 {
                assert_eq!(index, survivor);
                assert_eq!(deliveries, 2, "its second delivery");
                redelivered = Some(killed_at.elapsed());
            }
        }
        seen.len() == 200
    });
    let waited = redelivered.unwrap();
    assert!(
        waited >= Duration::from_millis(500),
        "claimed only once idle past the visibility timeout (after {waited:?})"
    );
    for _ in 0..500 {
        if orders.pending("billing").await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(orders.pending("billing").await.unwrap(), 0);
    processes[survivor].stop();
}

on_servers!(
    four_processes_share_the_events_each_handled_and_acknowledged_once,
    a_killed_processs_events_are_handled_by_another_after_the_visibility_timeout,
);

/// A child process: consumes `orders` in the group `billing`, printing each handled event,
/// until its stdin closes; then stops gracefully and prints how many events it acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by the tests above as a child process"]
async fn child_consumer() {
    let Some((url, ns, visibility)) = children::target("STREAM_CHILD") else {
        return;
    };
    let consumer = Consumer::new(
        "orders",
        "billing",
        |order: Order, delivery: Delivery| async move {
            if order.stall && delivery.deliveries() == 1 {
                print("stalled");
                std::future::pending::<()>().await;
            }
            print(&format!("handled {} {}", order.id, delivery.deliveries()));
            Ok::<_, std::io::Error>(())
        },
    )
    .client(client(&url, &ns))
    .visibility(visibility)
    .spawn()
    .unwrap();
    children::until_asked_to_stop().await;
    let stats = consumer.shutdown().await;
    print(&format!("acked {}", stats.acked));
}
