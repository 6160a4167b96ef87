use redis_patterns::cached;

struct Request {
    user_id: u64,
}

#[cached(key = "feed:<req.user>", ttl = "1m")]
async fn feed(req: &Request) -> Vec<u64> {
    vec![req.user_id]
}

fn main() {}
