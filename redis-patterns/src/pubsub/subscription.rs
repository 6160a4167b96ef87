//! A subscription's stream: its buffer in the client's hub, decoded into values and notices.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::broadcast::{self, error::RecvError};

use super::Notice;
use super::stats::{Counters, Event};
use crate::backend::pubsub::{Delivery, Kind, Registration};
use crate::client::Client;
use crate::error::Result;

/// A subscription: a `Stream` of the values received, and of [`Notice`]s where messages were
/// lost or did not decode. It ends only after [`Notice::Refused`]; dropping it unsubscribes.
pub struct Subscription<T> {
    stream: Pin<Box<dyn Stream<Item = std::result::Result<T, Notice>> + Send>>,
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl<T> Stream for Subscription<T> {
    type Item = std::result::Result<T, Notice>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.stream.as_mut().poll_next(cx)
    }
}

pub(super) type Decode<T> =
    Box<dyn Fn(&[u8], &[u8]) -> std::result::Result<T, Notice> + Send + Sync>;

/// What a subscription's stream holds between items: its buffer, its place in the hub (left
/// when dropped), and its client (which owns the hub).
struct Listening<T> {
    buffer: broadcast::Receiver<Delivery>,
    _registration: Registration,
    _client: Client,
    counters: Arc<Counters>,
    decode: Decode<T>,
}

pub(super) async fn join<T: Send + 'static>(
    client: Client,
    kind: Kind,
    name: &[u8],
    capacity: usize,
    counters: Arc<Counters>,
    decode: Decode<T>,
) -> Result<Subscription<T>> {
    let joined = client.backend().subscribe(kind, name, capacity).await;
    let (registration, buffer) = match joined {
        Ok(joined) => joined,
        Err(e) => {
            counters.count(Event::BackendError);
            return Err(e);
        }
    };
    let listening = Listening {
        buffer,
        _registration: registration,
        _client: client,
        counters,
        decode,
    };
    let stream = futures_util::stream::unfold(listening, |mut l| async move {
        let item = next(&mut l).await?;
        Some((item, l))
    });
    Ok(Subscription {
        stream: Box::pin(stream),
    })
}

/// The next item of a subscription; `None` once its buffer closed: after
/// [`Notice::Refused`], or once its hub is gone.
async fn next<T>(l: &mut Listening<T>) -> Option<std::result::Result<T, Notice>> {
    let (event, item) = match l.buffer.recv().await {
        Ok(Delivery::Message { channel, payload }) => match (l.decode)(&channel, &payload) {
            Ok(value) => (Event::Received, Ok(value)),
            Err(notice) => (Event::Undecodable, Err(notice)),
        },
        Ok(Delivery::Resubscribed) => (Event::Resubscribed, Err(Notice::Resubscribed)),
        Ok(Delivery::Refused(refusal)) => {
            (Event::BackendError, Err(Notice::Refused(refusal.into())))
        }
        Err(RecvError::Lagged(missed)) => (Event::Lagged, Err(Notice::Lagged { missed })),
        Err(RecvError::Closed) => return None,
    };
    l.counters.count(event);
    Some(item)
}
