use redis_patterns::cached;

#[cached(key = "search:<query>", ttl = "1m")]
async fn search(query: String, page: u32) -> Vec<String> {
    vec![format!("{query}:{page}")]
}

fn main() {
    let _ = search("lamp".into(), 2);
}
