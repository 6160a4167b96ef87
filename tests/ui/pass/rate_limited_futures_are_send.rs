//! A #[rate_limited] function's future is `Send` for every common error type, including
//! errors whose type has a lifetime (`dyn Error + 'static`), alone or stacked.

use std::future::Future;

use redis_patterns::rate_limited;
use redis_patterns::rate_limit::RateLimited;

#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error(transparent)]
    Busy(#[from] RateLimited),
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn spawnable<F: Future + Send + 'static>(_: F) {}

#[rate_limited(key = "api:<user>", limit = 10, window = "1m")]
async fn boxed(user: u64) -> Result<Vec<u64>, BoxError> {
    Ok(vec![user])
}

#[rate_limited(key = "api:<user>", limit = 10, window = "1m")]
#[rate_limited(key = "daily:<user>", limit = 1000, window = "1d", algorithm = "gcra")]
async fn with_anyhow(user: u64) -> anyhow::Result<Option<u64>> {
    Ok(Some(user))
}

#[rate_limited(key = "api:<user>", limit = 10, window = "1m")]
async fn with_thiserror(user: u64) -> Result<u64, ApiError> {
    Ok(user)
}

fn main() {
    spawnable(boxed(1));
    spawnable(with_anyhow(1));
    spawnable(with_thiserror(1));
}
