use redis_patterns::cached;

#[cached(key = "product id:<id", ttl = "1m")]
async fn product(id: u64) -> u64 {
    id
}

#[cached(key = "price:<>", ttl = "1m")]
async fn price(id: u64) -> u64 {
    id
}

fn main() {}
