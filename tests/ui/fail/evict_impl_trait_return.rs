use redis_patterns::cache_evict;

#[cache_evict(key = "product:<id>")]
async fn delete(id: u64) -> impl std::fmt::Debug {
    id
}

fn main() {
    let _ = delete(1);
}
