use redis_patterns::with_lock;

#[derive(Debug)]
struct PayError;

#[with_lock(key = "payment:<order_id>", ttl = "10s")]
async fn pay(order_id: u64) -> Result<(), PayError> {
    let _ = order_id;
    Ok(())
}

fn main() {
    let _ = pay(1);
}
