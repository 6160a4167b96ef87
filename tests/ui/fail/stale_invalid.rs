use redis_patterns::cached;

// `timeout` without a stale value to serve instead.
#[cached(key = "price:<sku>", ttl = "1m", timeout = "200ms")]
async fn price(sku: String) -> Result<u64, String> {
    Ok(sku.len() as u64)
}

// A version out of range, and one that is not a whole number.
#[cached(key = "a:<id>", ttl = "1m", version = 4294967295)]
async fn a(id: u64) -> u64 {
    id
}

#[cached(key = "b:<id>", ttl = "1m", version = "2")]
async fn b(id: u64) -> u64 {
    id
}

// An invalid stale window.
#[cached(key = "c:<id>", ttl = "1m", stale_if_error = "forever")]
async fn c(id: u64) -> u64 {
    id
}

fn main() {}
