//! A running [`Consumer`]: one task reading new events (`XREADGROUP … BLOCK` on a connection
//! of its own) and spawning a handler per event, bounded by a semaphore of `concurrency`
//! permits; one task acknowledging handled events in batches (`XACK` with every id handled
//! since the last one, one round trip in flight); one task claiming the events of consumers
//! that stopped (`XAUTOCLAIM`) and forgetting those consumers. A failed event is retried by
//! the handler's task after a backoff, without holding a permit meanwhile. Every failure of
//! the backend is retried after a backoff: the loop never ends before it is asked to.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use super::EventId;
mod tasks;

use super::consumer::{Consumer, ConsumerHandle, Delivery, Handler, Start};
use super::ops::{
    CreateGroup, Delivered, Extend, Fail, Failed, Held, Prune, ReadGroup, Retried, Retry,
};
use super::stats::{Counters, Event};
use crate::backend::{Backend, Blocking};
use crate::util::handler::run_renewing;

/// The most ids one `XACK` carries.
const ACK_BATCH: usize = 1_024;
/// The most events one `XAUTOCLAIM` claims.
const RECLAIM_BATCH: usize = 100;
/// The backoff after a failed read, claim or acknowledgement: from this, doubling…
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// …up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What the consumer's tasks share.
struct Shared<T> {
    backend: Arc<Backend>,
    stream_key: String,
    dead_key: String,
    group: String,
    name: String,
    concurrency: usize,
    batch: usize,
    max_deliveries: u64,
    visibility: Duration,
    retry_backoff: Duration,
    start: Start,
    forget_after: Duration,
    dead_letter_cap: u64,
    handler: Handler<T>,
    counters: Arc<Counters>,
    permits: Arc<Semaphore>,
    acks: mpsc::UnboundedSender<EventId>,
    stop: Arc<watch::Sender<bool>>,
}

pub(super) fn start<T: DeserializeOwned + Send + 'static>(consumer: Consumer<T>) -> ConsumerHandle {
    let client = consumer.resolved_client();
    let name = crate::util::handler::worker_name();
    let counters = Arc::new(Counters::new(
        &[("stream", &consumer.stream), ("group", &consumer.group)],
        super::stats::HANDLER_SECONDS,
    ));
    let stop = Arc::new(watch::Sender::new(false));
    let (acks, ack_rx) = mpsc::unbounded_channel();
    let stream_key = super::stream_key(&client, &consumer.stream);
    let dead_key = super::dead_letter_key(&client, &consumer.stream, &consumer.group);
    let shared = Arc::new(Shared {
        backend: client.inner().backend.clone(),
        stream_key,
        dead_key,
        group: consumer.group.into_owned(),
        name: name.clone(),
        concurrency: consumer.concurrency.max(1),
        batch: consumer.batch,
        max_deliveries: consumer.max_deliveries.max(1),
        visibility: consumer.visibility,
        retry_backoff: consumer.retry_backoff,
        start: consumer.start,
        forget_after: consumer
            .forget_after
            .max(consumer.visibility.saturating_mul(10)),
        dead_letter_cap: consumer.dead_letter_cap,
        handler: consumer.handler,
        counters: counters.clone(),
        permits: Arc::new(Semaphore::new(consumer.concurrency.max(1))),
        acks,
        stop: stop.clone(),
    });
    let task = tokio::spawn(run(shared, ack_rx));
    ConsumerHandle {
        name,
        counters,
        stop,
        task,
    }
}

async fn run<T: DeserializeOwned + Send + 'static>(
    shared: Arc<Shared<T>>,
    ack_rx: mpsc::UnboundedReceiver<EventId>,
) {
    if !shared.ensure_group().await {
        return;
    }
    let (finish, finished) = oneshot::channel();
    let acker = tokio::spawn(tasks::acknowledge(shared.clone(), ack_rx, finished));
    let reclaimer = tokio::spawn(tasks::reclaim(shared.clone()));
    read(&shared).await;
    // Graceful: the running handlers finish (retries waiting for their backoff give up, and
    // stay pending for another consumer), then their acknowledgements are written.
    let all = u32::try_from(shared.concurrency).unwrap_or(u32::MAX);
    let _ = shared.permits.acquire_many(all).await;
    shared.permits.close();
    let _ = reclaimer.await;
    let _ = finish.send(());
    let _ = acker.await;
    let leave = Prune {
        key: &shared.stream_key,
        group: &shared.group,
        consumer: &shared.name,
        idle: shared.forget_after,
        leaving: true,
    };
    if let Err(error) = shared.backend.run(&leave).await {
        tracing::debug!(target: "redis_patterns", %error, consumer = %shared.name, "leaving the group failed; it is forgotten when idle");
    }
}

/// Reads new events and hands each to a handler, while permits are free, until stopped.
async fn read<T: DeserializeOwned + Send + 'static>(shared: &Arc<Shared<T>>) {
    let mut blocking = Blocking::new(shared.backend.clone());
    // Tasks waiting for a permit (claimed events, retries) get one when a read comes back
    // empty, so a read waits at most a quarter of the visibility timeout.
    let block = shared
        .backend
        .longest_block()
        .min(shared.visibility / 4)
        .min(Duration::from_secs(2));
    let mut stop = shared.stop.subscribe();
    let mut backoff = MIN_BACKOFF;
    let want = match shared.batch {
        0 => shared.concurrency,
        batch => batch.min(shared.concurrency),
    };
    loop {
        if *stop.borrow() {
            return;
        }
        // Under a backlog, a read as soon as one handler is free would ask for a few events
        // (twice the reads and acknowledgements per event, measured): give the handlers of
        // the last batch a few turns of the scheduler to finish first.
        for _ in 0..8 {
            if shared.permits.available_permits() >= want {
                break;
            }
            tokio::task::yield_now().await;
        }
        let mut permits = tokio::select! {
            permit = shared.permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = stop.changed() => return,
        };
        let more = want
            .saturating_sub(1)
            .min(shared.permits.available_permits());
        if more > 0
            && let Ok(extra) = shared
                .permits
                .clone()
                .try_acquire_many_owned(u32::try_from(more).unwrap_or(u32::MAX))
        {
            permits.merge(extra);
        }
        // Not cancelled on shutdown: events the server hands out are handled.
        let op = ReadGroup {
            key: &shared.stream_key,
            group: &shared.group,
            consumer: &shared.name,
            count: permits.num_permits(),
            block,
        };
        match blocking.exec(&op).await {
            Ok(events) => {
                backoff = MIN_BACKOFF;
                for event in events {
                    let Some(permit) = permits.split(1) else {
                        break;
                    };
                    tokio::spawn(handle(shared.clone(), event, permit));
                }
            }
            Err(error) => {
                drop(permits);
                shared.backend_failed("reading the stream", &error);
                if shared.pause(backoff).await {
                    return;
                }
                backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
                // The group (or the stream) may have been deleted: create it again.
                shared.create_group().await.ok();
            }
        }
    }
}

/// Handles one event, retrying it after failures until it succeeds, is dead-lettered, or
/// the consumer stops.
async fn handle<T: DeserializeOwned + Send + 'static>(
    shared: Arc<Shared<T>>,
    mut event: Delivered,
    mut permit: OwnedSemaphorePermit,
) {
    loop {
        let value = match event.payload.as_deref().map(serde_json::from_slice::<T>) {
            Some(Ok(value)) => value,
            undecodable => {
                let why = match undecodable {
                    Some(Err(e)) => format!("the event is not the consumer's type: {e}"),
                    _ => "the entry has no field `d` (it was not appended by an EventStream)"
                        .to_owned(),
                };
                shared.counters.count(Event::Undecodable);
                shared.fail(event.id, &why, 1).await;
                return;
            }
        };
        let delivery = Delivery {
            id: event.id,
            deliveries: event.deliveries,
        };
        let error = match shared.call(value, delivery).await {
            Ok(()) => {
                shared.counters.count(Event::Handled);
                let _ = shared.acks.send(event.id);
                return;
            }
            Err(error) => error,
        };
        shared.counters.count(Event::Failed);
        tracing::warn!(target: "redis_patterns", stream = %shared.stream_key, group = %shared.group, id = %event.id, deliveries = event.deliveries, %error, "a stream handler failed");
        let Some(deliveries) = shared.fail(event.id, &error, shared.max_deliveries).await else {
            return;
        };
        drop(permit);
        if shared.pause(shared.retry_wait(deliveries)).await {
            return;
        }
        permit = match shared.permits.clone().acquire_owned().await {
            Ok(permit) => permit,
            Err(_) => return,
        };
        match shared.backend.run(&Retry(shared.held(event.id))).await {
            Ok(Retried::Again(again)) => {
                shared.counters.count(Event::Retried);
                event = again;
            }
            Ok(Retried::Trimmed | Retried::Lost) => return,
            // It stays pending, and is claimed after the visibility timeout.
            Err(error) => {
                shared.backend_failed("retrying an event", &error);
                return;
            }
        }
    }
}

impl<T> Shared<T> {
    /// The event `id`, pending for this consumer.
    fn held(&self, id: EventId) -> Held<'_> {
        Held {
            key: &self.stream_key,
            group: &self.group,
            consumer: &self.name,
            id,
        }
    }

    /// Creates the group until it exists; `false` when stopped first.
    async fn ensure_group(&self) -> bool {
        let mut backoff = MIN_BACKOFF;
        loop {
            match self.create_group().await {
                Ok(_) => return true,
                Err(error) => {
                    self.backend_failed("creating the consumer group", &error);
                    if self.pause(backoff).await {
                        return false;
                    }
                    backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn create_group(&self) -> crate::Result<bool> {
        let op = CreateGroup {
            key: &self.stream_key,
            group: &self.group,
            from_start: self.start == Start::Earliest,
        };
        self.backend.run(&op).await
    }

    /// Runs the handler, catching a panic, and renews the event's claim every third of the
    /// visibility timeout while it runs.
    async fn call(&self, value: T, delivery: Delivery) -> Result<(), String> {
        let id = delivery.id;
        let renew = (self.visibility / 3).max(Duration::from_millis(10));
        let handler = self.handler.call(value, delivery);
        let run = run_renewing(handler, renew, || async move {
            if let Err(error) = self.backend.run(&Extend(self.held(id))).await {
                self.backend_failed("renewing a slow handler's claim", &error);
            }
        });
        self.counters.timed(run).await
    }

    /// Records a failure of `id`: `Some(deliveries)` when it stays pending for a retry.
    async fn fail(&self, id: EventId, error: &str, max_deliveries: u64) -> Option<u64> {
        let op = Fail {
            event: self.held(id),
            dead: &self.dead_key,
            error,
            max_deliveries,
            dead_cap: self.dead_letter_cap,
        };
        match self.backend.run(&op).await {
            Ok(Failed::Pending { deliveries }) => Some(deliveries),
            Ok(Failed::DeadLettered) => {
                self.counters.count(Event::DeadLettered);
                tracing::warn!(target: "redis_patterns", stream = %self.stream_key, group = %self.group, %id, %error, "an event was moved to the dead-letter stream");
                None
            }
            Ok(Failed::Lost) => None,
            Err(e) => {
                // It stays pending, and is claimed after the visibility timeout.
                self.backend_failed("recording a failed event", &e);
                None
            }
        }
    }

    /// The wait before the retry that follows `deliveries` deliveries: the backoff doubled
    /// per delivery, at most a third of the visibility timeout (jittered by [`Self::pause`]).
    fn retry_wait(&self, deliveries: u64) -> Duration {
        let doublings = u32::try_from(deliveries.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(20);
        let wait = self.retry_backoff.saturating_mul(1 << doublings);
        wait.min(self.visibility / 3)
    }

    fn backend_failed(&self, what: &str, error: &crate::Error) {
        self.counters.count(Event::BackendError);
        tracing::warn!(target: "redis_patterns", stream = %self.stream_key, group = %self.group, %error, "stream consumer: {what} failed; trying again after a backoff");
    }

    /// Sleeps `wait` (jittered); `true` when the consumer was stopped meanwhile.
    async fn pause(&self, wait: Duration) -> bool {
        crate::util::handler::pause(&self.stop, wait).await
    }
}
