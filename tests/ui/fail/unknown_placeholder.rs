use redis_patterns::cached;

#[cached(key = "product:<ide>", ttl = "5m")]
async fn product(id: u64) -> Option<String> {
    Some(id.to_string())
}

// The function is still emitted: the call below adds no error of its own.
async fn caller() -> Option<String> {
    product(7).await
}

fn main() {}
