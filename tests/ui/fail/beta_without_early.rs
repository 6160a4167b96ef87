use redis_patterns::cached;

#[cached(key = "price:<id>", ttl = "5m", beta = 1.5)]
async fn price(id: u64) -> u64 {
    id
}

#[cached(key = "stock:<id>", ttl = "5m", stampede = "lock", beta = 1.5)]
async fn stock(id: u64) -> u64 {
    id
}

fn main() {}
