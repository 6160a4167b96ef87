//! The consumer's background tasks: writing acknowledgements in batches, and claiming the
//! events of consumers that stopped (forgetting those consumers now and then).

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};

use super::{ACK_BATCH, MAX_BACKOFF, MIN_BACKOFF, RECLAIM_BATCH, Shared, handle};
use crate::stream::EventId;
use crate::stream::ops::{Ack, Prune, Reclaim};
use crate::stream::stats::Event;

/// Writes the acknowledgements of handled events in batches until `finish`, then the rest.
pub(super) async fn acknowledge<T>(
    shared: Arc<Shared<T>>,
    mut ids: mpsc::UnboundedReceiver<EventId>,
    mut finish: oneshot::Receiver<()>,
) {
    let mut batch = Vec::new();
    let mut backoff = MIN_BACKOFF;
    let mut finishing = false;
    let mut last_tries = 3u32;
    loop {
        if batch.is_empty() && !finishing {
            tokio::select! {
                id = ids.recv() => match id {
                    Some(id) => batch.push(id),
                    None => return,
                },
                _ = &mut finish => finishing = true,
            }
            // The handlers of the same read finish about now: one turn of the scheduler lets
            // their ids join this acknowledgement.
            tokio::task::yield_now().await;
        }
        while batch.len() < ACK_BATCH {
            match ids.try_recv() {
                Ok(id) => batch.push(id),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            return;
        }
        let ack = Ack {
            key: &shared.stream_key,
            group: &shared.group,
            ids: &batch,
        };
        match shared.backend.exec(&ack).await {
            Ok(acked) => {
                shared.counters.count_many(Event::Acked, acked);
                batch.clear();
                backoff = MIN_BACKOFF;
            }
            Err(error) => {
                // The events stay pending: another consumer handles them again after the
                // visibility timeout if this one never gets through.
                shared.backend_failed("acknowledging events", &error);
                if finishing {
                    last_tries -= 1;
                    if last_tries == 0 {
                        return;
                    }
                }
                tokio::time::sleep(crate::util::jittered(backoff)).await;
                backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Claims the events of consumers that stopped, and forgets those consumers, until stopped.
pub(super) async fn reclaim<T: DeserializeOwned + Send + 'static>(shared: Arc<Shared<T>>) {
    let every = (shared.visibility / 4).max(Duration::from_millis(25));
    let prune_every = (shared.forget_after / 4).min(Duration::from_secs(60));
    let mut pruned = tokio::time::Instant::now();
    let mut cursor = EventId::default();
    loop {
        if shared.pause(every).await {
            return;
        }
        loop {
            let op = Reclaim {
                key: &shared.stream_key,
                dead: &shared.dead_key,
                group: &shared.group,
                consumer: &shared.name,
                min_idle: shared.visibility,
                cursor,
                count: shared.concurrency.min(RECLAIM_BATCH),
                max_deliveries: shared.max_deliveries,
                dead_cap: shared.dead_letter_cap,
            };
            let reclaimed = match shared.backend.run(&op).await {
                Ok(reclaimed) => reclaimed,
                Err(error) => {
                    shared.backend_failed("claiming events of stopped consumers", &error);
                    break;
                }
            };
            shared
                .counters
                .count_many(Event::DeadLettered, reclaimed.dead);
            for event in reclaimed.claimed {
                shared.counters.count(Event::Reclaimed);
                let Ok(permit) = shared.permits.clone().acquire_owned().await else {
                    return;
                };
                tokio::spawn(handle(shared.clone(), event, permit));
            }
            cursor = reclaimed.cursor;
            if cursor == EventId::default() {
                break;
            }
        }
        if pruned.elapsed() >= prune_every {
            pruned = tokio::time::Instant::now();
            let prune = Prune {
                key: &shared.stream_key,
                group: &shared.group,
                consumer: &shared.name,
                idle: shared.forget_after,
                leaving: false,
            };
            if let Err(error) = shared.backend.run(&prune).await {
                shared.backend_failed("forgetting stopped consumers", &error);
            }
        }
    }
}
