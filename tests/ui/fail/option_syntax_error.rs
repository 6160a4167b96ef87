use redis_patterns::cached;

#[cached(key = "price:<id>" ttl = "5m")]
async fn price(id: u64) -> u64 {
    id
}

fn main() {
    let _ = price(1);
}
