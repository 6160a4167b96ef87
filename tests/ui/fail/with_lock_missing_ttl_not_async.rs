use redis_patterns::lock::LockError;
use redis_patterns::with_lock;

#[with_lock(key = "payment:<order_id>")]
fn pay(order_id: u64) -> Result<(), LockError> {
    let _ = order_id;
    Ok(())
}

fn main() {
    let _ = pay(1);
}
