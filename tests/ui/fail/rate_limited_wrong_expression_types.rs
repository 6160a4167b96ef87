use redis_patterns::rate_limited;
use redis_patterns::rate_limit::RateLimited;

// `limit` and `cost` are `u64`: a type error is reported at the expression.
#[rate_limited(key = "api:<user_id>", limit = quota, window = "1m", cost = user_id.len())]
async fn handle(user_id: &str, quota: u32) -> Result<(), RateLimited> {
    let _ = user_id;
    Ok(())
}

fn main() {}
