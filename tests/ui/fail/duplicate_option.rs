use redis_patterns::cached;

#[cached(key = "product:<id>", ttl = "5m", ttl = "10m")]
async fn product(id: u64) -> Option<String> {
    Some(id.to_string())
}

fn main() {}
