use redis_patterns::{cache_put, cached};

struct Item {
    id: u64,
    brand: String,
}

// A parameter used only by a tag needs no `skip`: it names the entry's tags.
#[cached(key = "product:<id>", ttl = "5m", tags = ["catalog", "brand:<brand>"])]
async fn product(id: u64, brand: &str) -> String {
    format!("{id} {brand}")
}

// Tags with fields, and an owned parameter moved into the body after the tags are built.
#[cached(key = "item:<item.id>", ttl = "5m", tags = ["brand:<item.brand>"], near = "1m")]
async fn item(item: Item) -> Option<String> {
    Some(item.brand)
}

#[cache_put(key = "product:<id>", ttl = "5m", tags = ["catalog", "brand:<brand>"])]
async fn save(id: u64, brand: String) -> String {
    format!("{id} {brand}")
}

fn main() {
    let _ = product(1, "acme");
    let _ = product_refresh(1, "acme");
    let _ = item(Item { id: 1, brand: "acme".into() });
    let _ = save(1, "acme".into());
}
