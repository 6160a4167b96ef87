//! Queue workers in real processes (this test binary re-run as children): four processes
//! share 2,000 jobs, each run exactly once (a per-job counter: no job is handed to two
//! workers while its lease is alive); a process killed with SIGKILL in the middle of a job
//! loses it to another process after its lease; and a poison job ends in the dead list after
//! its attempts. On a real redis-server, and with the root feature `cluster` on the binary's
//! Redis Cluster.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::children::{self, print, read_until};
use redis_patterns::queue::{Job, Queue, Worker};
use redis_patterns::{Client, Config};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Task {
    n: u64,
    /// The child's handler hangs on its first attempt.
    stall: bool,
    /// The child's handler always fails.
    poison: bool,
}

const JOBS: u64 = 2_000;

fn client(url: &str, ns: &str) -> Client {
    let config = Config::from_url(url)
        .unwrap()
        .namespace(ns)
        .command_timeout(Duration::from_secs(2));
    Client::new(config).unwrap()
}

fn task(n: u64) -> Task {
    Task {
        n,
        stall: false,
        poison: false,
    }
}

/// `ran <n> <attempt>`.
fn ran(words: &[&str]) -> Option<(u64, u64)> {
    match words {
        ["ran", n, attempt] => Some((n.parse().ok()?, attempt.parse().ok()?)),
        _ => None,
    }
}

async fn four_processes_run_each_job_once(url: String) {
    let ns = common::namespace("queue-processes");
    let tasks = Queue::<Task>::new("tasks").client(client(&url, &ns));
    let value = format!("{url} {ns} 30000");
    let (mut processes, lines) = children::spawn("child_worker", "QUEUE_CHILD", &value, 4);
    let pushes: Vec<_> = (0..JOBS)
        .map(|n| {
            let tasks = tasks.clone();
            tokio::spawn(async move { tasks.push(&task(n)).await.unwrap() })
        })
        .collect();
    for push in pushes {
        push.await.unwrap();
    }
    let mut runs: HashMap<u64, u64> = HashMap::new();
    let mut by_process = [0u64; 4];
    read_until(&lines, |index, words| {
        if let Some((n, attempt)) = ran(words) {
            assert_eq!(attempt, 1, "no failure, no crash: one attempt");
            *runs.entry(n).or_default() += 1;
            by_process[index] += 1;
        }
        runs.len() as u64 == JOBS
    });
    assert!(
        runs.values().all(|&count| count == 1),
        "a job ran twice: {:?}",
        runs.iter().filter(|(_, c)| **c > 1).collect::<Vec<_>>()
    );
    assert!(
        by_process.iter().all(|&n| n > 0),
        "every process took a share: {by_process:?}"
    );
    for process in &mut processes {
        process.ask_to_stop();
    }
    let mut completed = 0;
    let mut stopped = 0;
    read_until(&lines, |_, words| {
        if let ["completed", n] = words {
            completed += n.parse::<u64>().unwrap();
            stopped += 1;
        }
        stopped == 4
    });
    for process in &mut processes {
        process.stop();
    }
    assert_eq!(completed, JOBS, "each job completed once");
    assert_eq!(tasks.len().await.unwrap().total(), 0);
}

async fn a_killed_processs_job_runs_elsewhere_and_a_poison_job_dies(url: String) {
    let ns = common::namespace("queue-kill");
    let tasks = Queue::<Task>::new("tasks").client(client(&url, &ns));
    let value = format!("{url} {ns} 1000");
    let (mut processes, lines) = children::spawn("child_worker", "QUEUE_CHILD", &value, 2);
    let stall = Task {
        stall: true,
        ..task(0)
    };
    tasks.push(&stall).await.unwrap();
    let mut stalled = None;
    read_until(&lines, |index, words| {
        stalled = Some(index).filter(|_| words == ["stalled"]);
        stalled.is_some()
    });
    let stalled = stalled.unwrap();
    let poison = Task {
        poison: true,
        ..task(1)
    };
    let poison_id = tasks.push(&poison).await.unwrap();
    for n in 2..50 {
        tasks.push(&task(n)).await.unwrap();
    }
    let killed_at = Instant::now();
    processes[stalled].child.kill().unwrap();
    processes[stalled].child.wait().unwrap();
    let survivor = 1 - stalled;
    let mut seen = HashMap::new();
    let mut rerun_after = None;
    read_until(&lines, |index, words| {
        if let Some((n, attempt)) = ran(words) {
            seen.insert(n, attempt);
            if n == 0 {
                assert_eq!(index, survivor);
                assert_eq!(attempt, 2, "its second attempt");
                rerun_after = Some(killed_at.elapsed());
            }
        }
        // All but the poison job, which never completes.
        (0..50).filter(|n| *n != 1).all(|n| seen.contains_key(&n))
    });
    let waited = rerun_after.unwrap();
    assert!(
        waited >= Duration::from_millis(500),
        "taken back only once its lease ran out (after {waited:?})"
    );
    let mut dead = Vec::new();
    for _ in 0..500 {
        dead = tasks.dead_jobs(10).await.unwrap();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].id, poison_id);
    assert_eq!(dead[0].job, Ok(poison));
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].error, "poisoned (attempt 3)");
    processes[survivor].stop();
    assert_eq!(tasks.len().await.unwrap().total(), 0);
}

on_servers!(
    four_processes_run_each_job_once,
    a_killed_processs_job_runs_elsewhere_and_a_poison_job_dies,
);

/// A child process: runs the jobs of `tasks`, printing each run, until its stdin closes;
/// then stops gracefully and prints how many jobs it completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by the tests above as a child process"]
async fn child_worker() {
    let Some((url, ns, visibility)) = children::target("QUEUE_CHILD") else {
        return;
    };
    let worker = Worker::new("tasks", |task: Task, job: Job| async move {
        if task.stall && job.attempt() == 1 {
            print("stalled");
            std::future::pending::<()>().await;
        }
        if task.poison {
            return Err(format!("poisoned (attempt {})", job.attempt()));
        }
        print(&format!("ran {} {}", task.n, job.attempt()));
        Ok(())
    })
    .client(client(&url, &ns))
    .concurrency(8)
    .visibility(visibility)
    .retry_backoff(Duration::from_millis(20))
    .spawn()
    .unwrap();
    children::until_asked_to_stop().await;
    let stats = worker.shutdown().await;
    print(&format!("completed {}", stats.completed));
}
