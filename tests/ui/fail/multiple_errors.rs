use redis_patterns::cached;

// Every mistake of one attribute is reported in one build.
#[cached(
    key = "product:<ide>",
    ttl = 0,
    stampede = "lok",
    jitter = "10%",
    skip(pgae)
)]
fn product(id: u64, page: u32) -> Option<String> {
    Some(format!("{id}:{page}"))
}

fn main() {
    let _ = product(1, 2);
}
