//! `#[job]` handlers with and without the job's context, every option, and the constant
//! used as a worker.

use redis_patterns::job;
use redis_patterns::queue::{Job, Worker};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct Mail {
    pub to: String,
}

/// Sends a mail.
#[job(queue = "emails")]
pub async fn send(mail: Mail) -> Result<(), std::io::Error> {
    let _ = mail.to;
    Ok(())
}

#[job(
    queue = "emails",
    concurrency = 2,
    max_attempts = 5,
    visibility = "10s",
    retry_backoff = "250ms",
    crate = "::redis_patterns"
)]
async fn send_logged(mail: Mail, job: Job) -> Result<(), String> {
    let _ = (mail.to, job.id(), job.attempt());
    Ok(())
}

fn workers() -> Vec<Worker<Mail>> {
    vec![send, send_logged.concurrency(8)]
}

async fn run() -> redis_patterns::Result<()> {
    let mail = Mail { to: "ada@example.com".into() };
    let _ = send.handle(mail, Job::new("id", 1)).await;
    send_logged.run().await
}

fn main() {
    let _ = workers();
    let _ = run;
}
