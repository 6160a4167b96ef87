use redis_patterns::with_lock;

#[with_lock(key = "job:<id>", ttl = "10s")]
async fn job(id: u64) -> u64 {
    id
}

fn main() {
    let _ = job(1);
}
