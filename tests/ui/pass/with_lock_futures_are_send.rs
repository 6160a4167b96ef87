//! A #[with_lock] function's future is `Send` for every common error type, including errors
//! whose type has a lifetime (`dyn Error + 'static`).

use std::future::Future;

use redis_patterns::lock::LockError;
use redis_patterns::with_lock;

#[derive(Debug, thiserror::Error)]
enum PayError {
    #[error(transparent)]
    Lock(#[from] LockError),
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn spawnable<F: Future + Send + 'static>(_: F) {}

#[with_lock(key = "payment:<id>", ttl = "10s")]
async fn boxed(id: u64) -> Result<Vec<u64>, BoxError> {
    Ok(vec![id])
}

#[with_lock(key = "payment:<id>", ttl = "10s")]
async fn with_anyhow(id: u64) -> anyhow::Result<Option<u64>> {
    Ok(Some(id))
}

#[with_lock(key = "payment:<id>", ttl = "10s")]
async fn with_thiserror(id: u64) -> Result<u64, PayError> {
    Ok(id)
}

fn main() {
    spawnable(boxed(1));
    spawnable(with_anyhow(1));
    spawnable(with_thiserror(1));
}
