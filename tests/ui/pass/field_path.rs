use redis_patterns::cached;

struct User {
    id: u64,
}

struct Request {
    user: User,
    region: String,
}

#[cached(key = "feed:<req.region>:<req.user.id>", ttl = "1m")]
async fn feed(req: &Request) -> Vec<String> {
    vec![req.region.clone(), req.user.id.to_string()]
}

fn main() {
    let req = Request {
        user: User { id: 1 },
        region: "eu".into(),
    };
    let _ = feed(&req);
    let _: String = feed_key(&req);
}
