use redis_patterns::cache_put;

#[cache_put]
async fn save(id: u64) -> u64 {
    id
}

fn main() {
    let _ = save(1);
}
