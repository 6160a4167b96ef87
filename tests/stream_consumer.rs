//! Stream consumers on a real redis-server and on `mem://` (and with the root features on the
//! cluster and behind Sentinel): every event handled and acknowledged, retries and dead
//! letters with the last error, undecodable events, claims of events whose consumer stopped
//! (a runtime shut down without a graceful stop), slow handlers keeping their events, and the
//! graceful stop. Killed processes are in `tests/stream_processes.rs`.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Kind, eventually};
use redis_patterns::Client;
use redis_patterns::stream::{Consumer, ConsumerHandle, Delivery, EventId, EventStream};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Order {
    id: u64,
    cents: u64,
}

/// Waits up to 20 s for the group to have nothing pending.
async fn drained<T: serde::de::DeserializeOwned>(stream: &EventStream<T>, group: &str) {
    for _ in 0..2_000 {
        if stream.pending(group).await.unwrap() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("events still pending after 20 s");
}

/// Handles of each event id, per consumer.
type Seen = Arc<Mutex<HashMap<EventId, Vec<u64>>>>;

fn counting(client: &Client, group: &'static str, seen: Seen, tag: u64) -> ConsumerHandle {
    Consumer::new("orders", group, move |order: Order, delivery: Delivery| {
        let seen = seen.clone();
        async move {
            assert_eq!(delivery.deliveries(), 1);
            let _ = order;
            seen.lock()
                .unwrap()
                .entry(delivery.id())
                .or_default()
                .push(tag);
            Ok::<_, std::io::Error>(())
        }
    })
    .client(client.clone())
    .concurrency(4)
    .spawn()
    .unwrap()
}

async fn every_event_is_handled_once_across_the_groups_consumers(kind: Kind) {
    let ns = common::namespace("stream-consume");
    let clients = common::clients(kind, &ns, 2);
    let orders = EventStream::<Order>::new("orders").client(clients[0].clone());
    // Appended before any consumer ran: a new group starts with the oldest event.
    let mut appended = Vec::new();
    for id in 0..100 {
        appended.push(orders.append(&Order { id, cents: 1 }).await.unwrap());
    }
    let seen = Seen::default();
    let a = counting(&clients[0], "billing", seen.clone(), 1);
    let b = counting(&clients[1], "billing", seen.clone(), 2);
    // Another group sees every event too.
    let audit = Seen::default();
    let c = counting(&clients[1], "audit", audit.clone(), 3);
    for id in 100..300 {
        appended.push(orders.append(&Order { id, cents: 1 }).await.unwrap());
    }
    eventually("300 events handled in each group", || {
        seen.lock().unwrap().len() == 300 && audit.lock().unwrap().len() == 300
    })
    .await;
    drained(&orders, "billing").await;
    drained(&orders, "audit").await;
    let handled: u64 = [&a, &b].iter().map(|h| h.stats().handled).sum();
    assert_eq!(handled, 300);
    assert!(a.name() != b.name());
    for h in [a, b, c] {
        let stats = h.stats();
        h.shutdown().await;
        assert_eq!(stats.failed, 0);
    }
    let seen = seen.lock().unwrap();
    for id in &appended {
        assert_eq!(seen[id].len(), 1, "{id} handled {:?}", seen[id]);
    }
}

async fn failures_are_retried_then_dead_lettered_with_the_last_error(kind: Kind) {
    let client = common::client(kind, "stream-poison");
    let orders = EventStream::<Order>::new("orders").client(client.clone());
    let attempts = Arc::new(Mutex::new(HashMap::<u64, u64>::new()));
    let seen = attempts.clone();
    let consumer = Consumer::new(
        "orders",
        "billing",
        move |order: Order, delivery: Delivery| {
            let seen = seen.clone();
            async move {
                let n = {
                    let mut seen = seen.lock().unwrap();
                    let n = seen.entry(order.id).or_default();
                    *n += 1;
                    *n
                };
                assert_eq!(delivery.deliveries(), n, "the delivery count");
                match order.cents {
                    // Poison: always fails.
                    0 => Err(format!("order {} is empty (attempt {n})", order.id)),
                    // Flaky: fails twice, then succeeds.
                    1 if n < 3 => Err("the payment provider timed out".to_owned()),
                    _ => Ok(()),
                }
            }
        },
    )
    .client(client.clone())
    .max_deliveries(4)
    .retry_backoff(Duration::from_millis(10))
    .visibility(Duration::from_secs(5))
    .spawn()
    .unwrap();
    let poison = orders.append(&Order { id: 1, cents: 0 }).await.unwrap();
    orders.append(&Order { id: 2, cents: 1 }).await.unwrap();
    orders.append(&Order { id: 3, cents: 5 }).await.unwrap();
    // An entry of another type, and one written by another tool without the field `d`.
    EventStream::<String>::new("orders")
        .client(client.clone())
        .append(&"not an order".to_owned())
        .await
        .unwrap();
    eventually("everything handled or dead-lettered", || {
        let s = consumer.stats();
        s.handled == 2 && s.dead_lettered == 2
    })
    .await;
    drained(&orders, "billing").await;
    let stats = consumer.stats();
    assert_eq!(stats.undecodable, 1);
    assert_eq!(
        stats.failed,
        4 + 2,
        "the poison's 4 deliveries and the flaky 2 failures"
    );
    assert_eq!(stats.retried, 3 + 2);
    assert_eq!(attempts.lock().unwrap()[&1], 4, "max_deliveries");
    assert_eq!(attempts.lock().unwrap()[&2], 3);
    consumer.shutdown().await;

    let letters = orders.dead_letters("billing", 10).await.unwrap();
    assert_eq!(letters.len(), 2, "{letters:?}");
    // The undecodable event went first, at once.
    let (undecodable, poisoned) = (&letters[0], &letters[1]);
    assert!(undecodable.event.is_err());
    assert_eq!(undecodable.deliveries, 1);
    assert!(
        undecodable.error.contains("not the consumer's type"),
        "{}",
        undecodable.error
    );
    assert_eq!(poisoned.event_id, Some(poison));
    assert_eq!(poisoned.event, Ok(Order { id: 1, cents: 0 }));
    assert_eq!(poisoned.deliveries, 4);
    assert_eq!(poisoned.error, "order 1 is empty (attempt 4)");
    // Another group's dead letters are its own.
    assert!(orders.dead_letters("audit", 10).await.unwrap().is_empty());
}

/// A consumer whose runtime is shut down mid-handler (as a crash leaves it: no graceful stop,
/// nothing acknowledged) holds its events until the visibility timeout; then a live consumer
/// claims and handles them, and one already at its `max_deliveries` is dead-lettered.
async fn a_stopped_consumers_events_are_claimed_after_the_visibility_timeout(kind: Kind) {
    let ns = common::namespace("stream-reclaim");
    let config = common::config(kind, &ns);
    let orders = EventStream::<Order>::new("orders").client(Client::new(config.clone()).unwrap());
    let started = Arc::new(AtomicU64::new(0));
    // Held past the visibility timeout (the handlers renew their claims), then crashed.
    let crashed = {
        let (config, started) = (config.clone(), started.clone());
        common::crash_after(Duration::from_millis(1_000), move || async move {
            let counter = started.clone();
            // Dropping the handle leaves the consumer running until the crash.
            let _stuck = Consumer::new("orders", "billing", move |_: Order, _: Delivery| {
                counter.fetch_add(1, Ordering::SeqCst);
                async {
                    std::future::pending::<()>().await;
                    Ok::<_, std::io::Error>(())
                }
            })
            .client(Client::new(config).unwrap())
            .concurrency(3)
            .visibility(Duration::from_millis(400))
            .max_deliveries(2)
            .spawn()
            .unwrap();
            while started.load(Ordering::SeqCst) < 3 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    for id in 0..3 {
        orders.append(&Order { id, cents: 1 }).await.unwrap();
    }
    crashed.join().unwrap();
    assert_eq!(
        orders.pending("billing").await.unwrap(),
        3,
        "held by the stopped consumer"
    );

    let handled = Arc::new(Mutex::new(Vec::new()));
    let log = handled.clone();
    let live = Consumer::new(
        "orders",
        "billing",
        move |order: Order, delivery: Delivery| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push((order.id, delivery.deliveries()));
                Ok::<_, std::io::Error>(())
            }
        },
    )
    .client(Client::new(config).unwrap())
    .visibility(Duration::from_millis(400))
    .max_deliveries(3)
    .spawn()
    .unwrap();
    eventually("the stopped consumer's events handled", || {
        handled.lock().unwrap().len() == 3
    })
    .await;
    drained(&orders, "billing").await;
    let mut handled = handled.lock().unwrap().clone();
    handled.sort();
    assert_eq!(handled, [(0, 2), (1, 2), (2, 2)], "(order, deliveries)");
    assert_eq!(live.stats().reclaimed, 3);
    live.shutdown().await;
}

/// A handler that runs for several visibility timeouts keeps its event: no other consumer
/// gets it meanwhile.
async fn a_slow_handler_keeps_its_event(kind: Kind) {
    let ns = common::namespace("stream-slow");
    let clients = common::clients(kind, &ns, 2);
    let orders = EventStream::<Order>::new("orders").client(clients[0].clone());
    let calls = Arc::new(AtomicU64::new(0));
    let consumers: Vec<ConsumerHandle> = clients
        .iter()
        .map(|client| {
            let calls = calls.clone();
            Consumer::new("orders", "billing", move |_: Order, _: Delivery| {
                calls.fetch_add(1, Ordering::SeqCst);
                async {
                    tokio::time::sleep(Duration::from_millis(1_200)).await;
                    Ok::<_, std::io::Error>(())
                }
            })
            .client(client.clone())
            .visibility(Duration::from_millis(300))
            .spawn()
            .unwrap()
        })
        .collect();
    orders.append(&Order { id: 1, cents: 1 }).await.unwrap();
    eventually("handled", || {
        consumers.iter().map(|c| c.stats().handled).sum::<u64>() == 1
    })
    .await;
    drained(&orders, "billing").await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    for c in consumers {
        assert_eq!(c.stats().reclaimed, 0);
        c.shutdown().await;
    }
}

/// Shutting down waits for the running handlers and acknowledges their events.
async fn a_graceful_stop_finishes_and_acknowledges_running_handlers(kind: Kind) {
    let client = common::client(kind, "stream-stop");
    let orders = EventStream::<Order>::new("orders").client(client.clone());
    let started = Arc::new(AtomicU64::new(0));
    let counter = started.clone();
    let consumer = Consumer::new("orders", "billing", move |_: Order, _: Delivery| {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<_, std::io::Error>(())
        }
    })
    .client(client.clone())
    .concurrency(4)
    .spawn()
    .unwrap();
    for id in 0..4 {
        orders.append(&Order { id, cents: 1 }).await.unwrap();
    }
    eventually("four handlers running", || {
        started.load(Ordering::SeqCst) == 4
    })
    .await;
    assert_eq!(consumer.stats().handled, 0);
    assert_eq!(orders.pending("billing").await.unwrap(), 4);
    consumer.shutdown().await;
    assert_eq!(orders.pending("billing").await.unwrap(), 0, "acknowledged");
    // Events appended after the stop wait for the next consumer.
    orders.append(&Order { id: 9, cents: 1 }).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(started.load(Ordering::SeqCst), 4);
}

/// What `#[stream_consumer]` handled, per test namespace.
static BILLED: Mutex<Vec<(String, u64, EventId)>> = Mutex::new(Vec::new());

#[derive(Debug)]
struct Declined;

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("declined")
    }
}

/// Bills orders; declines empty ones.
#[redis_patterns::stream_consumer(
    stream = "orders",
    group = "billing",
    max_deliveries = 2,
    retry_backoff = "10ms"
)]
async fn bill(order: Order, delivery: Delivery) -> Result<(), Declined> {
    if order.cents == 0 {
        return Err(Declined);
    }
    BILLED
        .lock()
        .unwrap()
        .push((format!("{}", order.id / 1_000), order.id, delivery.id()));
    Ok(())
}

async fn the_attributes_consumer_handles_and_dead_letters(kind: Kind) {
    let client = common::client(kind, "stream-attribute");
    let orders = EventStream::<Order>::new("orders").client(client.clone());
    // The run's orders are numbered from a random thousand, to find them among other runs'.
    let run = u64::from(fastrand::u16(1..u16::MAX));
    let first = orders
        .append(&Order {
            id: run * 1_000,
            cents: 5,
        })
        .await
        .unwrap();
    orders
        .append(&Order {
            id: run * 1_000 + 1,
            cents: 0,
        })
        .await
        .unwrap();
    let billing = bill.client(client).spawn().unwrap();
    eventually("one billed, one dead-lettered", || {
        let s = billing.stats();
        s.handled == 1 && s.dead_lettered == 1
    })
    .await;
    let billed: Vec<(u64, EventId)> = BILLED
        .lock()
        .unwrap()
        .iter()
        .filter(|(r, _, _)| *r == run.to_string())
        .map(|(_, id, event)| (*id, *event))
        .collect();
    assert_eq!(billed, [(run * 1_000, first)]);
    let letters = orders.dead_letters("billing", 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0].deliveries, letters[0].error.as_str()),
        (2, "declined")
    );
    billing.shutdown().await;
    // The handler itself, without a backend.
    let declined = bill
        .handle(Order { id: 1, cents: 0 }, Delivery::new(first, 1))
        .await;
    assert_eq!(declined, Err("declined".to_owned()));
}

on_both_backends!(
    the_attributes_consumer_handles_and_dead_letters,
    every_event_is_handled_once_across_the_groups_consumers,
    failures_are_retried_then_dead_lettered_with_the_last_error,
    a_stopped_consumers_events_are_claimed_after_the_visibility_timeout,
    a_slow_handler_keeps_its_event,
    a_graceful_stop_finishes_and_acknowledges_running_handlers,
);
