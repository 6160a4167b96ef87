//! A type of another crate cannot implement `KeyPart` in user code (the orphan rule): the
//! message suggests a newtype, a field placeholder, and the features for common id and time
//! types.

use std::time::SystemTime;

use redis_patterns::rate_limited;
use redis_patterns::rate_limit::RateLimited;

#[rate_limited(key = "report:<since>", limit = 1, window = "1m")]
async fn report(since: SystemTime) -> Result<(), RateLimited> {
    let _ = since;
    Ok(())
}

fn main() {}
