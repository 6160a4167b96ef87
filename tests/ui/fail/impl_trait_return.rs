use redis_patterns::cached;

#[cached(key = "numbers:<n>", ttl = "1m")]
async fn numbers(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

fn main() {
    let _ = numbers(3);
}
