use redis_patterns::cached;

struct Product {
    id: u64,
}

#[cached(key = "product:<id>", ttl = "5m")]
async fn product(id: u64) -> Result<Product, String> {
    Ok(Product { id })
}

fn main() {}
