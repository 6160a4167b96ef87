use redis_patterns::{cache_put, cached};

#[cached(
    key = "price:<sku>",
    ttl = "1m",
    stale_if_error = "1h",
    timeout = "200ms",
    stale_while_revalidate = "30s",
    version = 3,
    stampede = "lock"
)]
async fn price(sku: String) -> Result<u64, String> {
    Ok(sku.len() as u64)
}

#[cached(key = "near:<id>", ttl = "1m", near = "10s", stale_while_revalidate = "5s")]
async fn near(id: u64) -> Option<u64> {
    Some(id)
}

#[cache_put(key = "price:<sku>", ttl = "1m", stale_if_error = "1h", version = 3)]
async fn set_price(sku: String) -> Result<u64, String> {
    Ok(sku.len() as u64)
}

fn main() {
    let _ = (price(String::new()), near(1), set_price(String::new()));
}
