use std::sync::Arc;

use redis_patterns::cached;

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Product {
    id: u64,
}

#[cached(key = "product:<id>", ttl = "5m", near = "30s")]
async fn product(id: u64) -> Result<Product, String> {
    Ok(Product { id })
}

// Not `Clone`, but shared behind an `Arc`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Catalog {
    ids: Vec<u64>,
}

#[cached(key = "catalog", ttl = "5m", near = "5m", stampede = "lock", codec = "postcard")]
async fn catalog() -> Option<Arc<Catalog>> {
    Some(Arc::new(Catalog { ids: vec![1, 2] }))
}

fn assert_send<T: Send>(_: &T) {}

fn main() {
    assert_send(&product(1));
    assert_send(&catalog());
}
