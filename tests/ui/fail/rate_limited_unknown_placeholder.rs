use redis_patterns::rate_limited;
use redis_patterns::rate_limit::RateLimited;

#[rate_limited(key = "api:<usr_id>", limit = 100, window = "1m")]
async fn handle(user_id: &str) -> Result<(), RateLimited> {
    let _ = user_id;
    Ok(())
}

// The function is still emitted: the call below adds no error of its own.
async fn caller() -> Result<(), RateLimited> {
    handle("alice").await
}

fn main() {}
