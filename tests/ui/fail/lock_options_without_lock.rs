use redis_patterns::cached;

#[cached(key = "price:<id>", ttl = "5m", lock_ttl = "5s")]
async fn price(id: u64) -> u64 {
    id
}

#[cached(key = "stock:<id>", ttl = "5m", stampede = "early", lock_wait = "1s")]
async fn stock(id: u64) -> u64 {
    id
}

fn main() {}
