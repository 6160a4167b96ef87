use redis_patterns::rate_limited;
use redis_patterns::rate_limit::RateLimited;

#[rate_limited(key = "api:<user_id>", limit = 0, window = "1m")]
async fn handle(user_id: &str) -> Result<(), RateLimited> {
    let _ = user_id;
    Ok(())
}

fn main() {}
