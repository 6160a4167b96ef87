use redis_patterns::{cache_evict, cache_put, cached};

#[cached(key = "product:<id>", ttl = "5m", codec = "msgpak")]
async fn product(id: u64) -> Option<String> {
    Some(id.to_string())
}

#[cache_put(key = "product:<id>", ttl = "5m", codec = "protobuf")]
async fn save(id: u64) -> Option<String> {
    Some(id.to_string())
}

// Evicting writes nothing: no codec to choose.
#[cache_evict(key = "product:<id>", codec = "json")]
async fn remove(id: u64) -> Result<(), String> {
    let _ = id;
    Ok(())
}

fn main() {}
