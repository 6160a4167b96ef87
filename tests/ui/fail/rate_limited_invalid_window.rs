use redis_patterns::rate_limited;
use redis_patterns::rate_limit::RateLimited;

#[rate_limited(key = "api:<user_id>", limit = 100, window = "1 minute")]
async fn handle(user_id: &str) -> Result<(), RateLimited> {
    let _ = user_id;
    Ok(())
}

#[rate_limited(key = "api2:<user_id>", limit = 100, window = "0s")]
async fn handle2(user_id: &str) -> Result<(), RateLimited> {
    let _ = user_id;
    Ok(())
}

fn main() {}
