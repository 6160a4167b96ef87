use redis_patterns::{KeyPart, cached};
use std::fmt::Display;

#[cached(key = "label:<id>", ttl = 300)]
async fn label<I>(id: I) -> String
where
    I: KeyPart + Display + Send,
{
    format!("item {id}")
}

fn main() {
    let _ = label(7u64);
    let _ = label("sku-1".to_owned());
    let _: String = label_key(7u64);
}
