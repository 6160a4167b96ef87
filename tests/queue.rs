//! Job queues on a real redis-server and on `mem://` (and with the root features on the
//! cluster and behind Sentinel): every job run once across workers, delayed jobs, retries and
//! dead jobs with the last error, undecodable jobs, jobs of a stopped worker run again after
//! their lease, long jobs keeping their lease, and the graceful stop. Killed processes are in
//! `tests/queue_processes.rs`.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Kind, eventually};
use redis_patterns::Client;
use redis_patterns::queue::{Job, JobId, Queue, Worker, WorkerHandle};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Mail {
    n: u64,
    fail: bool,
}

/// Runs of each job, per job id.
type Runs = Arc<Mutex<HashMap<JobId, Vec<u64>>>>;

fn recording(client: &Client, runs: Runs, concurrency: usize) -> WorkerHandle {
    Worker::new("mail", move |mail: Mail, job: Job| {
        let runs = runs.clone();
        async move {
            runs.lock()
                .unwrap()
                .entry(job.id().clone())
                .or_default()
                .push(job.attempt());
            if mail.fail {
                return Err(format!(
                    "mail {} bounced (attempt {})",
                    mail.n,
                    job.attempt()
                ));
            }
            Ok(())
        }
    })
    .client(client.clone())
    .concurrency(concurrency)
    .max_attempts(3)
    .retry_backoff(Duration::from_millis(20))
    .spawn()
    .unwrap()
}

async fn every_job_runs_once_across_workers(kind: Kind) {
    let ns = common::namespace("queue-once");
    let clients = common::clients(kind, &ns, 2);
    let mail = Queue::<Mail>::new("mail").client(clients[0].clone());
    let mut ids = Vec::new();
    for n in 0..100 {
        ids.push(mail.push(&Mail { n, fail: false }).await.unwrap());
    }
    assert_eq!(mail.len().await.unwrap().ready, 100);
    let runs = Runs::default();
    let a = recording(&clients[0], runs.clone(), 4);
    let b = recording(&clients[1], runs.clone(), 4);
    for n in 100..200 {
        ids.push(mail.push(&Mail { n, fail: false }).await.unwrap());
    }
    eventually("200 jobs run", || runs.lock().unwrap().len() == 200).await;
    let (a, b) = (a.shutdown().await, b.shutdown().await);
    assert_eq!(a.completed + b.completed, 200);
    assert!(a.completed > 0 && b.completed > 0, "{a:?} {b:?}");
    {
        let runs = runs.lock().unwrap();
        for id in &ids {
            assert_eq!(runs[id], [1], "{id} ran once");
        }
    }
    assert_eq!(mail.len().await.unwrap().total(), 0);
}

async fn delayed_jobs_wait_until_due(kind: Kind) {
    let client = common::client(kind, "queue-delayed");
    let mail = Queue::<Mail>::new("mail").client(client.clone());
    let runs = Runs::default();
    let worker = recording(&client, runs.clone(), 2);
    let pushed = Instant::now();
    let later = mail
        .push_after(&Mail { n: 1, fail: false }, Duration::from_millis(600))
        .await
        .unwrap();
    let at = std::time::SystemTime::now() + Duration::from_millis(300);
    let sooner = mail
        .push_delayed(&Mail { n: 2, fail: false }, at)
        .await
        .unwrap();
    assert_eq!(mail.len().await.unwrap().delayed, 2);
    let mut order = Vec::new();
    eventually("both run", || {
        let runs = runs.lock().unwrap();
        for id in [&sooner, &later] {
            if runs.contains_key(id) && !order.contains(id) {
                order.push(id.clone());
                assert!(
                    pushed.elapsed() >= Duration::from_millis(250),
                    "{id} ran early"
                );
            }
        }
        order.len() == 2
    })
    .await;
    assert_eq!(order, [sooner, later.clone()]);
    assert!(
        pushed.elapsed() >= Duration::from_millis(550),
        "the later one waited"
    );
    worker.shutdown().await;
}

async fn failures_are_retried_then_dead_with_the_last_error(kind: Kind) {
    let client = common::client(kind, "queue-dead");
    let mail = Queue::<Mail>::new("mail").client(client.clone());
    let runs = Runs::default();
    let worker = recording(&client, runs.clone(), 2);
    let poison = mail.push(&Mail { n: 7, fail: true }).await.unwrap();
    let fine = mail.push(&Mail { n: 8, fail: false }).await.unwrap();
    Queue::<String>::new("mail")
        .client(client.clone())
        .push(&"not a mail".to_owned())
        .await
        .unwrap();
    eventually("one done, two dead", || {
        let s = worker.stats();
        s.completed == 1 && s.dead == 2
    })
    .await;
    let stats = worker.shutdown().await;
    assert_eq!((stats.failed, stats.retried), (3, 2), "{stats:?}");
    assert_eq!(runs.lock().unwrap()[&poison], [1, 2, 3]);
    assert_eq!(runs.lock().unwrap()[&fine], [1]);
    let dead = mail.dead_jobs(10).await.unwrap();
    assert_eq!(dead.len(), 2, "{dead:?}");
    let poisoned = dead.iter().find(|d| d.id == poison).unwrap();
    assert_eq!(poisoned.job, Ok(Mail { n: 7, fail: true }));
    assert_eq!(poisoned.attempts, 3);
    assert_eq!(poisoned.error, "mail 7 bounced (attempt 3)");
    assert!(poisoned.died_at > 1_600_000_000_000);
    let undecodable = dead.iter().find(|d| d.id != poison).unwrap();
    assert!(
        undecodable.error.contains("not the worker's type"),
        "{undecodable:?}"
    );
    assert_eq!(mail.len().await.unwrap().total(), 0);
}

/// A worker whose runtime is shut down mid-job (as a crash leaves it) holds the job until its
/// lease runs out; then another worker runs it.
async fn a_stopped_workers_job_runs_again_after_its_lease(kind: Kind) {
    let ns = common::namespace("queue-crash");
    let config = common::config(kind, &ns);
    let mail = Queue::<Mail>::new("mail").client(Client::new(config.clone()).unwrap());
    let started = Arc::new(AtomicU64::new(0));
    // Held past its lease (the handler renews it), then crashed.
    let crashed = {
        let (config, started) = (config.clone(), started.clone());
        common::crash_after(Duration::from_millis(1_000), move || async move {
            let counter = started.clone();
            let _stuck = Worker::new("mail", move |_: Mail, _: Job| {
                counter.fetch_add(1, Ordering::SeqCst);
                async {
                    std::future::pending::<()>().await;
                    Ok::<_, std::io::Error>(())
                }
            })
            .client(Client::new(config).unwrap())
            .visibility(Duration::from_millis(400))
            .spawn()
            .unwrap();
            while started.load(Ordering::SeqCst) < 1 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let id = mail.push(&Mail { n: 1, fail: false }).await.unwrap();
    crashed.join().unwrap();
    assert_eq!(mail.len().await.unwrap().running, 1, "still leased");
    let stopped_at = Instant::now();
    let runs = Runs::default();
    let worker = recording(&Client::new(config).unwrap(), runs.clone(), 1);
    eventually("run again", || runs.lock().unwrap().contains_key(&id)).await;
    assert!(stopped_at.elapsed() <= Duration::from_secs(3));
    assert_eq!(runs.lock().unwrap()[&id], [2], "its second attempt");
    worker.shutdown().await;
    assert_eq!(mail.len().await.unwrap().total(), 0);
}

/// A job longer than its lease keeps it (renewed while it runs): no other worker runs it.
async fn a_long_job_keeps_its_lease(kind: Kind) {
    let ns = common::namespace("queue-long");
    let clients = common::clients(kind, &ns, 2);
    let mail = Queue::<Mail>::new("mail").client(clients[0].clone());
    let calls = Arc::new(AtomicU64::new(0));
    let workers: Vec<WorkerHandle> = clients
        .iter()
        .map(|client| {
            let calls = calls.clone();
            Worker::new("mail", move |_: Mail, _: Job| {
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
    mail.push(&Mail { n: 1, fail: false }).await.unwrap();
    eventually("completed", || {
        workers.iter().map(|w| w.stats().completed).sum::<u64>() == 1
    })
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    for worker in workers {
        assert_eq!(worker.shutdown().await.lost_leases, 0);
    }
}

/// Shutting down waits for the running jobs and completes them.
async fn a_graceful_stop_finishes_running_jobs(kind: Kind) {
    let client = common::client(kind, "queue-stop");
    let mail = Queue::<Mail>::new("mail").client(client.clone());
    let started = Arc::new(AtomicU64::new(0));
    let counter = started.clone();
    let worker = Worker::new("mail", move |_: Mail, _: Job| {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<_, std::io::Error>(())
        }
    })
    .client(client.clone())
    .concurrency(3)
    .spawn()
    .unwrap();
    for n in 0..3 {
        mail.push(&Mail { n, fail: false }).await.unwrap();
    }
    eventually("three running", || started.load(Ordering::SeqCst) == 3).await;
    assert_eq!(mail.len().await.unwrap().running, 3);
    let stats = worker.shutdown().await;
    assert_eq!(stats.completed, 3);
    mail.push(&Mail { n: 9, fail: false }).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        started.load(Ordering::SeqCst),
        3,
        "nothing claimed after the stop"
    );
    assert_eq!(mail.len().await.unwrap().ready, 1);
}

/// What `#[job]` ran, with the run's tag.
static SENT: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

/// Sends mails; bounces those marked to fail.
#[redis_patterns::job(queue = "mail", max_attempts = 2, retry_backoff = "10ms")]
async fn send(mail: Mail, job: Job) -> Result<(), String> {
    if mail.fail {
        return Err(format!("bounced on attempt {}", job.attempt()));
    }
    SENT.lock().unwrap().push((mail.n / 1_000, mail.n));
    Ok(())
}

async fn the_attributes_worker_completes_and_buries(kind: Kind) {
    let client = common::client(kind, "queue-attribute");
    let mail = Queue::<Mail>::new("mail").client(client.clone());
    let run = u64::from(fastrand::u16(1..u16::MAX));
    mail.push(&Mail {
        n: run * 1_000,
        fail: false,
    })
    .await
    .unwrap();
    let bounced = mail
        .push(&Mail {
            n: run * 1_000 + 1,
            fail: true,
        })
        .await
        .unwrap();
    let worker = send.client(client).spawn().unwrap();
    eventually("one sent, one dead", || {
        let s = worker.stats();
        s.completed == 1 && s.dead == 1
    })
    .await;
    worker.shutdown().await;
    let sent: Vec<u64> = SENT
        .lock()
        .unwrap()
        .iter()
        .filter(|(r, _)| *r == run)
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(sent, [run * 1_000]);
    let dead = mail.dead_jobs(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, bounced);
    assert_eq!(dead[0].error, "bounced on attempt 2");
    let direct = send
        .handle(Mail { n: 1, fail: true }, Job::new("x", 1))
        .await;
    assert_eq!(direct, Err("bounced on attempt 1".to_owned()));
}

/// What a test's tracing subscriber wrote.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A lease lost while the job runs (here another worker took the job over, as after a lease
/// that ran out): the worker that lost it does not complete the job — the new owner's — and
/// counts and logs the loss once.
#[test]
fn a_lease_lost_while_running_is_counted_logged_and_the_job_left_to_its_owner() {
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    // One thread: the worker's tasks log to this thread's subscriber.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(lose_a_lease_while_running());
    let log = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        log.matches("lease ran out while it ran").count(),
        1,
        "logged once:\n{log}"
    );
}

async fn lose_a_lease_while_running() {
    let ns = common::namespace("queue-lost");
    let client = common::clients(Kind::Redis, &ns, 1).remove(0);
    let mail = Queue::<Mail>::new("mail").client(client.clone());
    let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
    let started_tx = Arc::new(Mutex::new(Some(started_tx)));
    let release = Arc::new(tokio::sync::Notify::new());
    let gate = release.clone();
    let worker = Worker::new("mail", move |_: Mail, _: Job| {
        if let Some(tx) = started_tx.lock().unwrap().take() {
            let _ = tx.send(());
        }
        let gate = gate.clone();
        async move {
            gate.notified().await;
            Ok::<_, std::io::Error>(())
        }
    })
    .client(client.clone())
    .visibility(Duration::from_secs(30))
    .spawn()
    .unwrap();
    let id = mail.push(&Mail { n: 1, fail: false }).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), started)
        .await
        .expect("the job started")
        .unwrap();
    let jobs = common::server()
        .keys(&ns)
        .into_iter()
        .find(|key| key.ends_with(":jobs"))
        .expect("the queue's job hash");
    let _: () = redis::cmd("HSET")
        .arg(&jobs)
        .arg(format!("{id}:o"))
        .arg("another-worker")
        .query(&mut common::server().redis())
        .unwrap();
    // The handler ends before a renewal (every 10 s) could find the lease gone: the
    // completion finds it.
    release.notify_one();
    eventually("the loss counted", || worker.stats().lost_leases == 1).await;
    let stats = worker.shutdown().await;
    assert_eq!((stats.completed, stats.lost_leases), (0, 1), "{stats:?}");
    assert_eq!(
        mail.len().await.unwrap().running,
        1,
        "still the other worker's"
    );
}

on_both_backends!(
    the_attributes_worker_completes_and_buries,
    every_job_runs_once_across_workers,
    delayed_jobs_wait_until_due,
    failures_are_retried_then_dead_with_the_last_error,
    a_stopped_workers_job_runs_again_after_its_lease,
    a_long_job_keeps_its_lease,
    a_graceful_stop_finishes_running_jobs,
);
