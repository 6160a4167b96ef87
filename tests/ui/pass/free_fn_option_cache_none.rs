use redis_patterns::cached;

// A missing user is cached too, so repeated lookups of an unknown id do not reach the origin.
#[cached(key = "user:name:<id>", ttl = "30s", cache_none)]
async fn user_name(id: u32) -> Option<String> {
    (id == 1).then(|| "ada".to_owned())
}

fn main() {
    let _ = user_name(1);
}
