use redis_patterns::cache_evict;

#[cache_evict(key = "product:<id>")]
fn delete(id: u64) {
    let _ = id;
}

fn main() {
    delete(1);
}
