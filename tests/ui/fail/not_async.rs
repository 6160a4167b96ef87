use redis_patterns::cached;

#[cached(key = "product:<id>", ttl = "5m")]
fn product(id: u64) -> Option<String> {
    Some(id.to_string())
}

fn main() {
    let _: Option<String> = product(7);
}
