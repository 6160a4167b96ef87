use redis_patterns::cache_put;

#[cache_put(key = "product:<id>", ttl = "5m", stampede = "lock")]
async fn save(id: u64) -> u64 {
    id
}

fn main() {}
