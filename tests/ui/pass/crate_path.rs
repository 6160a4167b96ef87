use redis_patterns::{cache_evict, cache_put, cached};

#[cached(key = "n:<n>", ttl = 60, crate = "::redis_patterns")]
async fn number(n: u64) -> u64 {
    n
}

#[cache_evict(key = "n:<n>", crate = "::redis_patterns")]
async fn forget(n: u64) {
    let _ = n;
}

#[cache_put(key = "n:<n>", ttl = 60, crate = "::redis_patterns")]
async fn store(n: u64) -> u64 {
    n
}

fn main() {
    let _ = number(1);
    let _ = forget(1);
    let _ = store(1);
}
