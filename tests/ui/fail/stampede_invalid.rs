use redis_patterns::cached;

#[cached(key = "product:<id>", ttl = "5m", stampede = "lok")]
async fn product(id: u64) -> Option<String> {
    Some(id.to_string())
}

#[cached(key = "price:<id>", ttl = "5m", stampede = "mutex")]
async fn price(id: u64) -> u64 {
    id
}

fn main() {}
