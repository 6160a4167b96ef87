use redis_patterns::cached;

#[cached(key = "product:<id>")]
async fn product(id: u64) -> Option<String> {
    Some(id.to_string())
}

fn main() {
    let _ = product(7);
}
