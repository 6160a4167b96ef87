use std::cell::Cell;

use redis_patterns::{cache_put, cached};

// A near lifetime longer than the entry's own.
#[cached(key = "product:<id>", ttl = "1m", near = "5m")]
async fn product(id: u64) -> Option<String> {
    Some(id.to_string())
}

// Not a duration.
#[cached(key = "price:<id>", ttl = "1m", near = "soon")]
async fn price(id: u64) -> Option<u64> {
    Some(id)
}

// The near tier hands out clones across threads: a `Cell` is not `Sync`.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Shared(Cell<u64>);

#[cached(key = "shared:<id>", ttl = "1m", near = "30s")]
async fn shared(id: u64) -> Option<Shared> {
    Some(Shared(Cell::new(id)))
}

// Writing through never keeps anything in process memory.
#[cache_put(key = "product:<id>", ttl = "1m", near = "30s")]
async fn save(id: u64) -> Option<String> {
    Some(id.to_string())
}

fn main() {}
