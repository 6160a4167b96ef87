use redis_patterns::cache_evict;

#[cache_evict]
async fn delete(id: u64) -> Result<(), String> {
    let _ = id;
    Ok(())
}

fn main() {
    let _ = delete(1);
}
