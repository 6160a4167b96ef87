use redis_patterns::cached;

#[cached(key = "product:<id>", ttl = "5 minutes")]
async fn product(id: u64) -> Option<String> {
    Some(id.to_string())
}

#[cached(key = "price:<id>", ttl = "90")]
async fn price(id: u64) -> u64 {
    id
}

#[cached(key = "stock:<id>", ttl = 1.5)]
async fn stock(id: u64) -> u64 {
    id
}

fn main() {}
