use redis_patterns::cached;

// The refresh runs in a spawned task, after the call returned: a borrowed parameter cannot go
// there.
#[cached(key = "price:<sku>", ttl = "1m", stale_while_revalidate = "30s")]
async fn price(sku: &str) -> Result<u64, String> {
    Ok(sku.len() as u64)
}

// Nor can a result that is not `Send`.
#[cached(key = "rc:<id>", ttl = "1m", stale_while_revalidate = "30s")]
async fn rc(id: u64) -> std::rc::Rc<u64> {
    std::rc::Rc::new(id)
}

fn main() {}
