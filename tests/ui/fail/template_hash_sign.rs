//! `#` marks placeholder values in keys, so literal template text may not contain it.

use redis_patterns::cached;

#[cached(key = "issue#:<id>", ttl = "1m")]
async fn issue(id: u64) -> u64 {
    id
}

fn main() {}
