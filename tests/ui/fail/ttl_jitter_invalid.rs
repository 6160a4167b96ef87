use redis_patterns::cached;

#[cached(key = "price:<id>", ttl = "5m", ttl_jitter = "10")]
async fn price(id: u64) -> u64 {
    id
}

#[cached(key = "stock:<id>", ttl = "5m", ttl_jitter = "150%")]
async fn stock(id: u64) -> u64 {
    id
}

fn main() {}
