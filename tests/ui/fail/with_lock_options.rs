use redis_patterns::lock::LockError;
use redis_patterns::with_lock;

// Every mistake of one attribute is reported in one build.
#[with_lock(
    key = "payment:<oder_id>",
    ttl = 0,
    wait = "-2s",
    retry = "fast",
    on_lost = "ignore",
    extend = "yes",
    fenced = 1,
    timeout = "1s"
)]
async fn pay(order_id: u64) -> Result<(), LockError> {
    let _ = order_id;
    Ok(())
}

fn main() {
    let _ = pay(1);
}
