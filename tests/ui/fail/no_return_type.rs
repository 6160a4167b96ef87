use redis_patterns::cached;

#[cached(key = "warm:<id>", ttl = "1m")]
async fn warm(id: u64) {
    let _ = id;
}

fn main() {
    let _ = warm(1);
}
