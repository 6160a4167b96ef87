use redis_patterns::cached;

#[cached(key = "user:name:<id>", ttl = 60)]
async fn user_name(id: u32) -> Option<String> {
    (id == 1).then(|| "ada".to_owned())
}

fn main() {
    let _ = user_name(1);
}
