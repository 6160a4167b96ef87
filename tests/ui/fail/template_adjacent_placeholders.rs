use redis_patterns::cached;

#[cached(key = "a:<x><y>", ttl = "1m")]
async fn pair(x: u32, y: u32) -> u32 {
    x + y
}

fn main() {}
