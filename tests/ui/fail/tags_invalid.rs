use redis_patterns::cached;

// Not a list.
#[cached(key = "a:<id>", ttl = "1m", tags = "catalog")]
async fn a(id: u64) -> u64 {
    id
}

// An element that is not a string literal, and an empty list.
#[cached(key = "b:<id>", ttl = "1m", tags = ["catalog", 7])]
async fn b(id: u64) -> u64 {
    id
}

#[cached(key = "c:<id>", ttl = "1m", tags = [])]
async fn c(id: u64) -> u64 {
    id
}

// A placeholder that names no parameter, and an invalid template.
#[cached(key = "d:<id>", ttl = "1m", tags = ["brand:<brnd>", "bad:#x"])]
async fn d(id: u64, brand: &str) -> u64 {
    let _ = brand;
    id
}

fn main() {}
