use redis_patterns::cached;

#[cached(key = "orders:<self.tenant>:<page>", ttl = "1m")]
async fn orders(page: u32) -> Vec<u32> {
    vec![page]
}

fn main() {}
