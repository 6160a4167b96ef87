use redis_patterns::cached;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Product {
    id: u64,
    name: String,
}

#[derive(Debug)]
struct DbError;

#[cached(key = "product:<id>", ttl = "5m")]
async fn product(id: u64) -> Result<Product, DbError> {
    Ok(Product {
        id,
        name: "lamp".into(),
    })
}

async fn caller() -> Result<Product, DbError> {
    product(7).await
}

fn main() {
    let _ = caller();
}
