//! [`Consumer`]: a handler of a stream's events in a consumer group, its settings, and the
//! [`ConsumerHandle`] of a running one. The loop itself is in `worker.rs`.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::EventId;
use super::stats::{ConsumerStats, Counters};
use crate::client::Client;
use crate::error::{Error, Result};
pub use crate::util::handler::HandlerFuture;

/// What a handler learns of an event besides its value: its id (an idempotency key: a
/// redelivered event has the same id) and how many times it was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub(crate) id: EventId,
    pub(crate) deliveries: u64,
}

impl Delivery {
    /// A delivery of event `id`, its `deliveries`th: for calling a handler in tests.
    ///
    /// ```
    /// use redis_patterns::stream::{Delivery, EventId};
    ///
    /// let delivery = Delivery::new(EventId::default(), 1);
    /// assert_eq!((delivery.id(), delivery.deliveries()), (EventId::default(), 1));
    /// ```
    pub fn new(id: EventId, deliveries: u64) -> Self {
        Delivery { id, deliveries }
    }

    /// The event's id in its stream.
    pub fn id(&self) -> EventId {
        self.id
    }

    /// How many times the event was delivered, this time included: 1 the first time.
    pub fn deliveries(&self) -> u64 {
        self.deliveries
    }
}

/// A handler of events with their delivery.
pub(crate) type Handler<T> = crate::util::handler::Handler<T, Delivery>;

/// Where a group that does not exist yet starts reading its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Start {
    /// With the oldest event the stream holds: nothing appended before the group's first
    /// consumer ran is missed (the default).
    #[default]
    Earliest,
    /// With the next event appended.
    Latest,
}

/// The settings of a consumer, as `#[stream_consumer]` writes them. Not for direct use.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct ConsumerSpec {
    pub stream: &'static str,
    pub group: &'static str,
    pub concurrency: usize,
    pub max_deliveries: u64,
    pub visibility: Duration,
    pub batch: usize,
    pub retry_backoff: Duration,
}

/// The default number of handlers running at once.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// The default number of deliveries before an event is dead-lettered.
pub const DEFAULT_MAX_DELIVERIES: u64 = 5;
/// The default visibility timeout.
pub const DEFAULT_VISIBILITY: Duration = Duration::from_secs(30);

/// A consumer of the events of one stream in one consumer group: every event appended is
/// handled by one consumer of the group (at least once), each process's consumer with a name
/// of its own. Build it with [`Consumer::new`] or `#[stream_consumer]`, start it with
/// [`spawn`](Consumer::spawn) (a handle to stop it) or [`run`](Consumer::run) (until the
/// process is asked to stop).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use redis_patterns::stream::{Consumer, Delivery, EventStream};
///
/// let client = redis_patterns::Client::new("mem://")?;
/// let orders = EventStream::<u64>::new("orders").client(client.clone());
/// let billing = Consumer::new("orders", "billing", |order: u64, delivery: Delivery| async move {
///     println!("billing order {order} (event {})", delivery.id());
///     Ok::<_, std::io::Error>(())
/// })
/// .client(client)
/// .spawn()?;
/// orders.append(&42).await?;
/// # while billing.stats().handled < 1 { tokio::time::sleep(std::time::Duration::from_millis(5)).await }
/// billing.shutdown().await;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct Consumer<T> {
    pub(crate) stream: Cow<'static, str>,
    pub(crate) group: Cow<'static, str>,
    pub(crate) concurrency: usize,
    pub(crate) max_deliveries: u64,
    pub(crate) visibility: Duration,
    pub(crate) batch: usize,
    pub(crate) retry_backoff: Duration,
    pub(crate) start: Start,
    pub(crate) forget_after: Duration,
    pub(crate) dead_letter_cap: u64,
    pub(crate) client: Option<Client>,
    pub(crate) handler: Handler<T>,
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("stream", &self.stream)
            .field("group", &self.group)
            .field("concurrency", &self.concurrency)
            .field("max_deliveries", &self.max_deliveries)
            .field("visibility", &self.visibility)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl<T> Consumer<T> {
    /// A consumer of `stream` (the [`EventStream`](super::EventStream) of that name) in
    /// `group`, handling each event with `handler`: `Ok` acknowledges it, `Err` (or a panic)
    /// retries it with a backoff until its `max_deliveries`, then moves it to the group's
    /// dead-letter stream with the error's text.
    pub fn new<F, Fut, E>(
        stream: impl Into<Cow<'static, str>>,
        group: impl Into<Cow<'static, str>>,
        handler: F,
    ) -> Self
    where
        F: Fn(T, Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), E>> + Send + 'static,
        E: fmt::Display,
        T: 'static,
    {
        Consumer::with_handler(stream.into(), group.into(), Handler::from_fn(handler))
    }

    /// The consumer `#[stream_consumer]` describes. Not for direct use.
    #[doc(hidden)]
    pub const fn __from_attribute(
        spec: ConsumerSpec,
        handler: fn(T, Delivery) -> HandlerFuture,
    ) -> Self {
        let mut consumer = Consumer::with_handler(
            Cow::Borrowed(spec.stream),
            Cow::Borrowed(spec.group),
            Handler::Fn(handler),
        );
        consumer.concurrency = spec.concurrency;
        consumer.max_deliveries = spec.max_deliveries;
        consumer.visibility = spec.visibility;
        consumer.batch = spec.batch;
        consumer.retry_backoff = spec.retry_backoff;
        consumer
    }

    const fn with_handler(
        stream: Cow<'static, str>,
        group: Cow<'static, str>,
        handler: Handler<T>,
    ) -> Self {
        Consumer {
            stream,
            group,
            concurrency: DEFAULT_CONCURRENCY,
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            visibility: DEFAULT_VISIBILITY,
            batch: 0,
            retry_backoff: Duration::from_millis(100),
            start: Start::Earliest,
            forget_after: Duration::from_secs(3600),
            dead_letter_cap: super::DEFAULT_MAX_LEN,
            client: None,
            handler,
        }
    }

    /// Uses `client` (and its namespace) instead of the process-wide default client.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Runs up to `handlers` handlers at once (at least 1; 8 by default).
    pub fn concurrency(mut self, handlers: usize) -> Self {
        self.concurrency = handlers.max(1);
        self
    }

    /// Dead-letters an event once it was delivered `deliveries` times without success (at
    /// least 1; 5 by default).
    pub fn max_deliveries(mut self, deliveries: u64) -> Self {
        self.max_deliveries = deliveries.max(1);
        self
    }

    /// How long an event may stay with a consumer that does not answer for it before another
    /// consumer claims it (30 s by default; at least 100 ms). A live consumer renews the
    /// events it is handling every third of this, so a slow handler keeps its event; one that
    /// crashed loses it after this long.
    pub fn visibility(mut self, timeout: Duration) -> Self {
        self.visibility = timeout.max(Duration::from_millis(100));
        self
    }

    /// Reads up to `events` events per round trip (by default as many as handlers are free).
    pub fn batch(mut self, events: usize) -> Self {
        self.batch = events;
        self
    }

    /// The wait before the first retry of a failed event, doubling with each further
    /// delivery (jittered, at most a third of the visibility timeout; 100 ms by default).
    pub fn retry_backoff(mut self, first: Duration) -> Self {
        self.retry_backoff = first;
        self
    }

    /// Where a group created by this consumer starts reading (the oldest event by default).
    pub fn start(mut self, start: Start) -> Self {
        self.start = start;
        self
    }

    /// Forgets the group's consumers idle this long with nothing pending: processes that
    /// stopped (1 hour by default; at least 10 times the visibility timeout).
    pub fn forget_idle_consumers_after(mut self, idle: Duration) -> Self {
        self.forget_after = idle;
        self
    }

    /// Keeps about the newest `letters` dead letters of the group (100,000 by default).
    pub fn dead_letter_cap(mut self, letters: u64) -> Self {
        self.dead_letter_cap = letters.max(1);
        self
    }

    /// Runs the handler once on `event`, as the consumer would, without any backend: for
    /// testing a handler (a `#[stream_consumer]` function is this consumer). `Err` holds the
    /// error's text.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use redis_patterns::stream::{Consumer, Delivery, EventId};
    ///
    /// let strict = Consumer::new("orders", "audit", |cents: u64, _: Delivery| async move {
    ///     if cents == 0 { Err("an order of nothing") } else { Ok(()) }
    /// });
    /// let delivery = Delivery::new(EventId::default(), 1);
    /// assert_eq!(strict.handle(0, delivery).await, Err("an order of nothing".to_owned()));
    /// # });
    /// ```
    pub fn handle(&self, event: T, delivery: Delivery) -> HandlerFuture {
        self.handler.call(event, delivery)
    }

    pub(crate) fn resolved_client(&self) -> Client {
        match &self.client {
            Some(client) => client.clone(),
            None => Client::default_client().clone(),
        }
    }
}

impl<T: DeserializeOwned + Send + 'static> Consumer<T> {
    /// Starts the consumer on the current Tokio runtime: it creates the group if it is
    /// missing, then reads, handles and acknowledges events until
    /// [`ConsumerHandle::shutdown`]. Dropping the handle leaves it running.
    ///
    /// Fails only outside a Tokio runtime; Redis being unreachable is not an error here: the
    /// consumer keeps trying with a backoff, and its [`stats`](ConsumerHandle::stats) count
    /// the failures.
    pub fn spawn(self) -> Result<ConsumerHandle> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Config(
                "a stream consumer runs on a Tokio runtime; spawn it from within one".into(),
            ));
        }
        Ok(super::worker::start(self))
    }

    /// Runs the consumer until the process receives Ctrl-C or `SIGTERM`, then stops it
    /// gracefully (see [`ConsumerHandle::shutdown`]).
    pub async fn run(self) -> Result<()> {
        let handle = self.spawn()?;
        crate::util::handler::stop_signal().await;
        tracing::info!(target: "redis_patterns", consumer = %handle.name(), "stopping the stream consumer");
        handle.shutdown().await;
        Ok(())
    }
}

/// Runs `consumer` until the process receives Ctrl-C or `SIGTERM`: [`Consumer::run`].
///
/// ```no_run
/// # async fn example() -> redis_patterns::Result<()> {
/// use redis_patterns::stream::{self, Consumer, Delivery};
///
/// let billing = Consumer::new("orders", "billing", |order: u64, _: Delivery| async move {
///     Ok::<_, std::io::Error>(())
/// });
/// stream::run(billing).await
/// # }
/// ```
pub async fn run<T: DeserializeOwned + Send + 'static>(consumer: Consumer<T>) -> Result<()> {
    consumer.run().await
}

/// Starts `consumer`: [`Consumer::spawn`].
pub fn spawn<T: DeserializeOwned + Send + 'static>(
    consumer: Consumer<T>,
) -> Result<ConsumerHandle> {
    consumer.spawn()
}

/// A running consumer.
pub struct ConsumerHandle {
    pub(crate) name: String,
    pub(crate) counters: Arc<Counters>,
    pub(crate) stop: Arc<tokio::sync::watch::Sender<bool>>,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for ConsumerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerHandle")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ConsumerHandle {
    /// The consumer's name in its group: `<host>-<process id>-<random>`, new for every
    /// start.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the consumer did so far.
    pub fn stats(&self) -> ConsumerStats {
        self.counters.snapshot()
    }

    /// Stops gracefully: no new reads (one in flight finishes), the running handlers finish
    /// and their events are acknowledged, and the consumer leaves its group if nothing is
    /// pending for it. Failed events waiting for a retry stay pending, for another consumer
    /// to claim after the visibility timeout. Answers what the consumer did, all told.
    pub async fn shutdown(self) -> ConsumerStats {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await
            && e.is_panic()
        {
            tracing::error!(target: "redis_patterns", consumer = %self.name, "the stream consumer's task panicked");
        }
        self.counters.snapshot()
    }
}
