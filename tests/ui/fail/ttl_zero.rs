use redis_patterns::cached;

#[cached(key = "product:<id>", ttl = 0)]
async fn product(id: u64) -> Option<String> {
    Some(id.to_string())
}

#[cached(key = "price:<id>", ttl = "0s")]
async fn price(id: u64) -> u64 {
    id
}

fn main() {}
