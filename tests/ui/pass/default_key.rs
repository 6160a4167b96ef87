use redis_patterns::cached;

// No `key`: the key is the module path, the function name and every parameter.
#[cached(ttl = "10m")]
async fn price(sku: String, region: u8) -> Result<u64, String> {
    Ok(sku.len() as u64 + u64::from(region))
}

fn main() {
    let _ = price("a".into(), 1);
    let _: String = price_key("a".into(), 1);
}
