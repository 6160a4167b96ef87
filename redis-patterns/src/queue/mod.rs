//! Reliable job queues: [`Queue<T>`] pushes jobs (now, or delayed), a [`Worker`] (or
//! `#[job]`) runs them with a lease, so that a job whose worker died is run again and a job is
//! never run by two workers while its lease is alive.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use redis_patterns::queue::{Job, Queue, Worker};
//!
//! let client = redis_patterns::Client::new("mem://")?;
//! let emails = Queue::<String>::new("emails").client(client.clone());
//! let worker = Worker::new("emails", |to: String, job: Job| async move {
//!     println!("mailing {to} (job {}, attempt {})", job.id(), job.attempt());
//!     Ok::<_, std::io::Error>(())
//! })
//! .client(client)
//! .spawn()?;
//! emails.push(&"ada@example.com".to_owned()).await?;
//! # while worker.stats().completed < 1 { tokio::time::sleep(std::time::Duration::from_millis(5)).await }
//! let stats = worker.shutdown().await;
//! assert_eq!(stats.completed, 1);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! * **How a job moves.** `push` stores the job and puts its id on the ready list (or in the
//!   delayed set until it is due), in one script. A worker claims the next ready id in one
//!   script that also gives it a lease (the leases sorted set, by expiry) and counts the
//!   attempt; it renews the lease every third of the visibility timeout while the handler
//!   runs. `Ok` completes the job (deleted); `Err` (or a panic) puts it back in the delayed
//!   set for a retry after a backoff, or after its `max_attempts` moves it to the dead list
//!   with the error. Every claim first takes back the jobs whose lease ran out (their worker
//!   crashed): ready again, or dead after their last attempt.
//! * **Guarantees.** At least once: a job is completed only after its handler returned `Ok`,
//!   and a job whose worker stopped runs again after the visibility timeout; make handlers
//!   idempotent, keyed on [`Job::id`]. While a lease is alive no other worker gets the job
//!   (completing and failing check the lease's owner), so a job runs twice at once only when
//!   its handler outruns a lease it could not renew (Redis unreachable for a third of the
//!   visibility timeout); [`WorkerStats::lost_leases`] counts those, and each is logged once
//!   as a warning.
//! * **Keys**, all under the queue's hash tag (one slot of a cluster): `ns:{emails}:ready`,
//!   `:delayed`, `:leases`, `:jobs` (a hash of payloads, attempts, owners and last errors),
//!   `:dead` (the last [`DEFAULT_DEAD_CAP`] dead jobs), `:wake` (wake-up tokens for idle
//!   workers, which `BLPOP` it on a connection of their own; capped at 1,000, a day's TTL).
//!   The job keys have no TTL: a queue keeps its work until it is done; a job leaves when it
//!   completes or dies.
//! * **Failures**: `push` returns the typed error within the command timeout. A worker never
//!   stops on a Redis outage or a handler's error: it backs off (50 ms to 2 s) and resumes.

#[cfg(feature = "test-util")]
pub(crate) mod conformance;
mod ops;
pub(crate) mod stats;
mod worker;

use std::marker::PhantomData;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::Client;
use crate::error::{Error, Result};

use self::ops::{Count, DeadJobs, Keys, Push};
pub use self::stats::WorkerStats;
#[doc(hidden)]
pub use self::worker::WorkerSpec;
pub use self::worker::{Job, Worker, WorkerHandle};
pub use crate::util::handler::HandlerFuture;

/// How many dead jobs a queue keeps unless the worker's `dead_cap` says otherwise.
pub const DEFAULT_DEAD_CAP: u64 = 10_000;

/// A job's id: random, given by [`Queue::push`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub(crate) String);

impl JobId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many jobs a queue holds, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueLen {
    /// Waiting for a worker.
    pub ready: u64,
    /// Not due yet: delayed, or waiting for a retry.
    pub delayed: u64,
    /// Claimed by a worker (leased).
    pub running: u64,
}

impl QueueLen {
    /// Every job not done yet.
    pub fn total(&self) -> u64 {
        self.ready
            .saturating_add(self.delayed)
            .saturating_add(self.running)
    }
}

/// A job given up on: failed its `max_attempts`, its worker stopped during its last
/// attempt, or not decodable as the worker's type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadJob<T> {
    /// The job's id.
    pub id: JobId,
    /// The job, or why it does not decode as `T`.
    pub job: std::result::Result<T, String>,
    /// How many attempts it had.
    pub attempts: u64,
    /// The last error.
    pub error: String,
    /// When it died, in milliseconds since the Unix epoch (the server's clock).
    pub died_at: u64,
}

/// A queue of jobs of type `T` (stored as JSON). Cheap to clone.
pub struct Queue<T> {
    name: String,
    client: Option<Client>,
    _type: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            name: self.name.clone(),
            client: self.client.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<T> Queue<T> {
    /// The queue `name` (keys `ns:{name}:…`).
    ///
    /// ```
    /// let emails = redis_patterns::queue::Queue::<String>::new("emails");
    /// assert_eq!(emails.name(), "emails");
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Queue {
            name: name.into(),
            client: None,
            _type: PhantomData,
        }
    }

    /// Uses `client` (and its namespace) instead of the process-wide default client.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many jobs the queue holds, by state.
    pub async fn len(&self) -> Result<QueueLen> {
        let keys = self.keys();
        let counts = self
            .resolved_client()
            .backend()
            .exec(&Count { keys: &keys })
            .await?;
        Ok(QueueLen {
            ready: counts.ready,
            delayed: counts.delayed,
            running: counts.running,
        })
    }

    fn resolved_client(&self) -> &Client {
        match &self.client {
            Some(client) => client,
            None => Client::default_client(),
        }
    }

    fn keys(&self) -> Keys {
        keys(self.resolved_client(), &self.name)
    }
}

/// The keys of the queue `name`.
pub(crate) fn keys(client: &Client, name: &str) -> Keys {
    Keys::new(&crate::key::name_key(client.namespace(), name))
}

impl<T: Serialize> Queue<T> {
    /// Adds `job`, ready now; answers its id.
    pub async fn push(&self, job: &T) -> Result<JobId> {
        self.push_after(job, Duration::ZERO).await
    }

    /// Adds `job`, due at `at` (converted to a delay by this machine's clock; the server's
    /// clock decides when it is due). A time already past makes it ready now.
    pub async fn push_delayed(&self, job: &T, at: SystemTime) -> Result<JobId> {
        let delay = at.duration_since(SystemTime::now()).unwrap_or_default();
        self.push_after(job, delay).await
    }

    /// Adds `job`, due after `delay`.
    pub async fn push_after(&self, job: &T, delay: Duration) -> Result<JobId> {
        let payload = serde_json::to_vec(job)
            .map_err(|e| Error::Config(format!("the job does not serialize as JSON: {e}")))?;
        let keys = self.keys();
        let id = crate::util::new_token();
        let op = Push {
            keys: &keys,
            id: &id,
            payload: &payload,
            delay,
        };
        self.resolved_client().backend().run(&op).await?;
        Ok(JobId(id))
    }
}

impl<T: DeserializeOwned> Queue<T> {
    /// The oldest `count` dead jobs (the list `ns:{name}:dead`, capped like the worker's
    /// `dead_cap`). Inspect them, push the jobs again once fixed, and trim the list with
    /// `LTRIM`.
    pub async fn dead_jobs(&self, count: usize) -> Result<Vec<DeadJob<T>>> {
        let keys = self.keys();
        let records = self
            .resolved_client()
            .backend()
            .exec(&DeadJobs { keys: &keys, count })
            .await?;
        Ok(records.iter().filter_map(|r| dead_job(r)).collect())
    }
}

/// A dead list's JSON record: `{"id", "d" (the job's JSON as text), "attempts", "error", "at"}`.
fn dead_job<T: DeserializeOwned>(record: &[u8]) -> Option<DeadJob<T>> {
    let value: serde_json::Value = serde_json::from_slice(record).ok()?;
    let text = |name: &str| value.get(name).and_then(|v| v.as_str()).unwrap_or_default();
    let number = |name: &str| {
        value
            .get(name)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    Some(DeadJob {
        id: JobId(text("id").to_owned()),
        job: serde_json::from_str(text("d")).map_err(|e| e.to_string()),
        attempts: number("attempts"),
        error: text("error").to_owned(),
        died_at: number("at"),
    })
}
