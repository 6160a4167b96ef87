use redis_patterns::cached;

#[cached(key = "sum", ttl = "1m")]
async fn sum((a, b): (u32, u32)) -> u32 {
    a + b
}

fn main() {}
