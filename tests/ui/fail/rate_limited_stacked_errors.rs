use redis_patterns::rate_limited;
use redis_patterns::rate_limit::RateLimited;

// Every mistake of every stacked attribute is reported in one build.
#[rate_limited(key = "api:<user>", limit = 10, window = "1s", algorithm = "gcra", burst = 0)]
#[rate_limited(key = "api:<usr>", window = "1h", on_error = "ignore", limt = 5)]
fn handle(user: &str) -> Result<(), RateLimited> {
    let _ = user;
    Ok(())
}

fn main() {}
