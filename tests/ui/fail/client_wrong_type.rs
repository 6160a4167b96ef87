use redis_patterns::cached;

const REDIS_URL: &str = "redis://127.0.0.1:6379";

#[cached(key = "price:<id>", ttl = "5m", client = REDIS_URL)]
async fn price(id: u64) -> u64 {
    id
}

fn main() {}
