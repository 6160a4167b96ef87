use redis_patterns::cached;

#[cached(key = product, ttl = "5m")]
async fn product(id: u64) -> u64 {
    id
}

fn main() {}
