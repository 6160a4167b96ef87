//! [`Worker`]: runs a queue's jobs, up to `concurrency` at once. One task claims jobs while
//! handlers are free (one script per claim) and waits for work otherwise (`BLPOP` of a
//! wake-up token on a connection of its own, at most until the next delayed job is due or
//! lease runs out); each job runs in a task of its own, renewing its lease while it runs.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::ops::{Claim, ClaimNext, Claimed, Complete, Extend, Fail, Failed, Keys, Leased, Wait};
use super::stats::{Counters, Event, WorkerStats};
use super::{DEFAULT_DEAD_CAP, JobId};
use crate::backend::{Backend, Blocking};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::util::handler::{Handler, HandlerFuture, run_renewing, stop_signal, worker_name};

/// The backoff after a failed claim or wait: from this, doubling…
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// …up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// The longest wait before a failed job's retry.
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(600);

/// What a handler learns of its job besides its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    id: JobId,
    attempt: u64,
}

impl Job {
    /// Attempt `attempt` of the job `id`: for calling a handler in tests.
    ///
    /// ```
    /// let job = redis_patterns::queue::Job::new("some-id", 1);
    /// assert_eq!((job.id().as_str(), job.attempt()), ("some-id", 1));
    /// ```
    pub fn new(id: impl Into<String>, attempt: u64) -> Self {
        Job {
            id: JobId(id.into()),
            attempt,
        }
    }

    /// The job's id: the same on every attempt, an idempotency key.
    pub fn id(&self) -> &JobId {
        &self.id
    }

    /// This attempt's number: 1 the first time.
    pub fn attempt(&self) -> u64 {
        self.attempt
    }
}

/// The settings of a worker, as `#[job]` writes them. Not for direct use.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct WorkerSpec {
    pub queue: &'static str,
    pub concurrency: usize,
    pub max_attempts: u64,
    pub visibility: Duration,
    pub retry_backoff: Duration,
}

/// A worker of one queue: claims its jobs and runs the handler on each, up to `concurrency`
/// at once, in every process that runs one. Build it with [`Worker::new`] or `#[job]`, start
/// it with [`spawn`](Worker::spawn) or [`run`](Worker::run). See the [module](super) for the
/// guarantees.
pub struct Worker<T> {
    queue: Cow<'static, str>,
    concurrency: usize,
    max_attempts: u64,
    visibility: Duration,
    retry_backoff: Duration,
    dead_cap: u64,
    client: Option<Client>,
    handler: Handler<T, Job>,
}

impl<T> fmt::Debug for Worker<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("queue", &self.queue)
            .field("concurrency", &self.concurrency)
            .field("max_attempts", &self.max_attempts)
            .field("visibility", &self.visibility)
            .finish_non_exhaustive()
    }
}

impl<T> Worker<T> {
    /// A worker of the queue `queue` running `handler` on each job: `Ok` completes it, `Err`
    /// (or a panic) retries it after a backoff until its `max_attempts`, then moves it to the
    /// dead list with the error's text.
    pub fn new<F, Fut, E>(queue: impl Into<Cow<'static, str>>, handler: F) -> Self
    where
        F: Fn(T, Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), E>> + Send + 'static,
        E: fmt::Display,
        T: 'static,
    {
        Worker::with_handler(queue.into(), Handler::from_fn(handler))
    }

    /// The worker `#[job]` describes. Not for direct use.
    #[doc(hidden)]
    pub const fn __from_attribute(spec: WorkerSpec, handler: fn(T, Job) -> HandlerFuture) -> Self {
        let mut worker = Worker::with_handler(Cow::Borrowed(spec.queue), Handler::Fn(handler));
        worker.concurrency = spec.concurrency;
        worker.max_attempts = spec.max_attempts;
        worker.visibility = spec.visibility;
        worker.retry_backoff = spec.retry_backoff;
        worker
    }

    const fn with_handler(queue: Cow<'static, str>, handler: Handler<T, Job>) -> Self {
        Worker {
            queue,
            concurrency: 4,
            max_attempts: 3,
            visibility: Duration::from_secs(30),
            retry_backoff: Duration::from_secs(1),
            dead_cap: DEFAULT_DEAD_CAP,
            client: None,
            handler,
        }
    }

    /// Uses `client` (and its namespace) instead of the process-wide default client.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Runs up to `jobs` jobs at once (at least 1; 4 by default).
    pub fn concurrency(mut self, jobs: usize) -> Self {
        self.concurrency = jobs.max(1);
        self
    }

    /// Gives up on a job after `attempts` attempts (at least 1; 3 by default).
    pub fn max_attempts(mut self, attempts: u64) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The lease of a claimed job: another worker gets it if this one does not renew it for
    /// this long (30 s by default; at least 100 ms). A running handler renews it every third
    /// of this.
    pub fn visibility(mut self, lease: Duration) -> Self {
        self.visibility = lease.max(Duration::from_millis(100));
        self
    }

    /// The wait before a failed job's first retry, doubling per attempt (at most 10 minutes;
    /// 1 s by default).
    pub fn retry_backoff(mut self, first: Duration) -> Self {
        self.retry_backoff = first;
        self
    }

    /// Keeps the last `jobs` dead jobs (10,000 by default).
    pub fn dead_cap(mut self, jobs: u64) -> Self {
        self.dead_cap = jobs.max(1);
        self
    }

    /// Runs the handler once on `job`, as the worker would, without any backend: for
    /// testing a handler (a `#[job]` function is this worker).
    pub fn handle(&self, job: T, context: Job) -> HandlerFuture {
        self.handler.call(job, context)
    }
}

impl<T: DeserializeOwned + Send + 'static> Worker<T> {
    /// Starts the worker on the current Tokio runtime, until [`WorkerHandle::shutdown`].
    /// Dropping the handle leaves it running. Fails only outside a Tokio runtime.
    pub fn spawn(self) -> Result<WorkerHandle> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Config(
                "a queue worker runs on a Tokio runtime; spawn it from within one".into(),
            ));
        }
        let client = match &self.client {
            Some(client) => client.clone(),
            None => Client::default_client().clone(),
        };
        let name = worker_name();
        let counters = Arc::new(Counters::new(
            &[("queue", &self.queue)],
            super::stats::HANDLER_SECONDS,
        ));
        let stop = Arc::new(watch::Sender::new(false));
        let shared = Arc::new(Shared {
            backend: client.inner().backend.clone(),
            keys: super::keys(&client, &self.queue),
            name: name.clone(),
            concurrency: self.concurrency.max(1),
            max_attempts: self.max_attempts.max(1),
            visibility: self.visibility,
            retry_backoff: self.retry_backoff,
            dead_cap: self.dead_cap,
            handler: self.handler,
            counters: counters.clone(),
            permits: Arc::new(Semaphore::new(self.concurrency.max(1))),
            stop: stop.clone(),
        });
        let task = tokio::spawn(run(shared));
        Ok(WorkerHandle {
            name,
            counters,
            stop,
            task,
        })
    }

    /// Runs the worker until the process receives Ctrl-C or `SIGTERM`, then stops it
    /// gracefully.
    pub async fn run(self) -> Result<()> {
        let handle = self.spawn()?;
        stop_signal().await;
        tracing::info!(target: "redis_patterns", worker = %handle.name(), "stopping the queue worker");
        handle.shutdown().await;
        Ok(())
    }
}

/// A running worker.
pub struct WorkerHandle {
    name: String,
    counters: Arc<Counters>,
    stop: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerHandle")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl WorkerHandle {
    /// The worker's name (`<host>-<process id>-<random>`), the owner its leases record.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the worker did so far.
    pub fn stats(&self) -> WorkerStats {
        self.counters.snapshot()
    }

    /// Stops gracefully: no new claims; the running jobs finish and are completed (or
    /// failed). Answers what the worker did, all told.
    pub async fn shutdown(self) -> WorkerStats {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await
            && e.is_panic()
        {
            tracing::error!(target: "redis_patterns", worker = %self.name, "the queue worker's task panicked");
        }
        self.counters.snapshot()
    }
}

struct Shared<T> {
    backend: Arc<Backend>,
    keys: Keys,
    name: String,
    concurrency: usize,
    max_attempts: u64,
    visibility: Duration,
    retry_backoff: Duration,
    dead_cap: u64,
    handler: Handler<T, Job>,
    counters: Arc<Counters>,
    permits: Arc<Semaphore>,
    stop: Arc<watch::Sender<bool>>,
}

async fn run<T: DeserializeOwned + Send + 'static>(shared: Arc<Shared<T>>) {
    let mut blocking = Blocking::new(shared.backend.clone());
    let longest_wait = shared
        .backend
        .longest_block()
        .min(shared.visibility / 4)
        .min(Duration::from_secs(2));
    let mut stop = shared.stop.subscribe();
    let mut backoff = MIN_BACKOFF;
    loop {
        if *stop.borrow() {
            break;
        }
        let permit = tokio::select! {
            permit = shared.permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let claim = ClaimNext {
            keys: &shared.keys,
            owner: &shared.name,
            lease: shared.visibility,
            max_attempts: shared.max_attempts,
            dead_cap: shared.dead_cap,
        };
        let failure = match shared.backend.run(&claim).await {
            Ok(Claim::Job(job)) => {
                backoff = MIN_BACKOFF;
                tokio::spawn(run_job(shared.clone(), job, permit));
                continue;
            }
            Ok(Claim::Empty(next)) => {
                drop(permit);
                let wait = next.map_or(longest_wait, |next| next.min(longest_wait));
                if wait.is_zero() {
                    continue;
                }
                // A token says a job was pushed; none within the wait, and the claim looks
                // again (for due jobs and expired leases).
                let op = Wait {
                    keys: &shared.keys,
                    block: wait,
                };
                let woken = tokio::select! {
                    woken = blocking.exec(&op) => woken,
                    _ = stop.changed() => break,
                };
                match woken {
                    Ok(_) => {
                        backoff = MIN_BACKOFF;
                        continue;
                    }
                    Err(error) => error,
                }
            }
            Err(error) => error,
        };
        shared.backend_failed(&failure);
        if shared.pause(backoff).await {
            break;
        }
        backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
    }
    // Graceful: the running jobs finish.
    let all = u32::try_from(shared.concurrency).unwrap_or(u32::MAX);
    let _ = shared.permits.acquire_many(all).await;
    shared.permits.close();
}

/// Runs one claimed job to its outcome.
async fn run_job<T: DeserializeOwned + Send + 'static>(
    shared: Arc<Shared<T>>,
    job: Claimed,
    permit: OwnedSemaphorePermit,
) {
    let leased = Leased {
        keys: &shared.keys,
        id: &job.id,
        owner: &shared.name,
    };
    let lost = match serde_json::from_slice::<T>(&job.payload) {
        Ok(value) => run_leased(&shared, &job, leased, value).await,
        Err(e) => {
            let why = format!("the job is not the worker's type: {e}");
            shared.fail(leased, &why, 0, job.attempts).await == Some(Failed::Lost)
        }
    };
    // Counted and logged once, whichever step found the lease gone.
    if lost {
        shared.counters.count(Event::LostLease);
        tracing::warn!(target: "redis_patterns", queue = %shared.keys.jobs, job = %job.id, "a job's lease ran out while it ran; another worker may run it again");
    }
    drop(permit);
}

/// Runs the handler while renewing the job's lease, then completes or fails the job. Answers
/// whether a step found the lease gone: a renewal, or the completion or failure (which find
/// it again when a renewal in flight was dropped as the handler ended).
async fn run_leased<T>(shared: &Shared<T>, job: &Claimed, leased: Leased<'_>, value: T) -> bool {
    let context = Job {
        id: JobId(job.id.clone()),
        attempt: job.attempts,
    };
    let renew = (shared.visibility / 3).max(Duration::from_millis(10));
    let renewal_lost = std::sync::atomic::AtomicBool::new(false);
    let run = run_renewing(shared.handler.call(value, context), renew, || async {
        let extend = Extend {
            job: leased,
            lease: shared.visibility,
        };
        match shared.backend.run(&extend).await {
            Ok(true) => {}
            Ok(false) => renewal_lost.store(true, std::sync::atomic::Ordering::Relaxed),
            Err(error) => shared.backend_failed(&error),
        }
    });
    let outcome_lost = match shared.counters.timed(run).await {
        Ok(()) => match shared.backend.run(&Complete(leased)).await {
            Ok(true) => {
                shared.counters.count(Event::Completed);
                false
            }
            Ok(false) => true,
            // The lease runs out and the job runs again: at least once.
            Err(error) => {
                shared.backend_failed(&error);
                false
            }
        },
        Err(error) => {
            shared.counters.count(Event::Failed);
            tracing::warn!(target: "redis_patterns", queue = %shared.keys.jobs, job = %job.id, attempt = job.attempts, %error, "a job failed");
            shared
                .fail(leased, &error, shared.max_attempts, job.attempts)
                .await
                == Some(Failed::Lost)
        }
    };
    outcome_lost || renewal_lost.into_inner()
}

impl<T> Shared<T> {
    /// Records a failed attempt: retried after the backoff, or dead after `max_attempts`.
    /// Answers what the backend did, `None` when it failed.
    async fn fail(
        &self,
        job: Leased<'_>,
        error: &str,
        max_attempts: u64,
        attempts: u64,
    ) -> Option<Failed> {
        let doublings = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(20);
        let backoff = self
            .retry_backoff
            .saturating_mul(1 << doublings)
            .min(MAX_RETRY_BACKOFF);
        let op = Fail {
            job,
            error,
            max_attempts,
            backoff: crate::util::jittered(backoff),
            dead_cap: self.dead_cap,
        };
        let outcome = self.backend.run(&op).await;
        match &outcome {
            Ok(Failed::Retry) => self.counters.count(Event::Retried),
            Ok(Failed::Buried) => {
                self.counters.count(Event::Dead);
                tracing::warn!(target: "redis_patterns", queue = %self.keys.jobs, job = %job.id, %error, "a job was moved to the dead list");
            }
            // Counted and logged by `run_job`, once per job.
            Ok(Failed::Lost) => {}
            // The lease runs out, and the job is retried (or buried) by the next claim.
            Err(e) => self.backend_failed(e),
        }
        outcome.ok()
    }

    fn backend_failed(&self, error: &crate::Error) {
        self.counters.count(Event::BackendError);
        tracing::warn!(target: "redis_patterns", queue = %self.keys.jobs, %error, "queue worker: the backend failed; trying again after a backoff");
    }

    /// Sleeps `wait` (jittered); `true` when the worker was stopped meanwhile.
    async fn pause(&self, wait: Duration) -> bool {
        crate::util::handler::pause(&self.stop, wait).await
    }
}
