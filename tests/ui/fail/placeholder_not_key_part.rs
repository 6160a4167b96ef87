use redis_patterns::cached;

struct Filter {
    min_price: u64,
}

#[cached(key = "search:<filter>", ttl = "1m")]
async fn search(filter: Filter) -> Vec<u64> {
    vec![filter.min_price]
}

fn main() {}
