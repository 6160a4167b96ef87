use redis_patterns::{cache_evict, cache_put, cached};

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Product {
    id: u64,
    name: String,
}

#[cached(key = "product:<id>", ttl = "5m")]
async fn product(id: u64) -> Result<Product, String> {
    Ok(Product {
        id,
        name: "lamp".into(),
    })
}

// Deletes `product:<id>` once the update succeeded.
#[cache_evict(key = "product:<id>")]
async fn rename(id: u64, name: String) -> Result<(), String> {
    let _ = (id, name);
    Ok(())
}

// Stores the returned product under `product:<product.id>` (write-through).
#[cache_put(key = "product:<product.id>", ttl = "5m", ttl_jitter = "5%")]
async fn save(product: Product) -> Result<Product, String> {
    Ok(product)
}

#[cache_evict(key = "product:<id>")]
async fn delete(id: u64) {
    let _ = id;
}

fn main() {
    let _ = product(1);
    let _ = rename(1, "desk".into());
    let _ = save(Product {
        id: 2,
        name: "chair".into(),
    });
    let _ = delete(1);
}
