use redis_patterns::cached;

#[cached(key = "<id>", ttl = "1m")]
async fn product(id: u64) -> u64 {
    id
}

fn main() {}
