use redis_patterns::cached;

#[cached(key = "price:<id>", ttl = "5m", cache_none)]
async fn price(id: u64) -> Result<u64, String> {
    Ok(id)
}

fn main() {}
