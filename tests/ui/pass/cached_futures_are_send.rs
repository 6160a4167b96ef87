//! A #[cached] function's future is `Send` (spawnable, an axum handler) for every common
//! return type, including errors whose type has a lifetime (`dyn Error + 'static`).

use std::future::Future;

use redis_patterns::cached;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Product {
    id: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("database unavailable")]
struct DbError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn spawnable<F: Future + Send + 'static>(_: F) {}

#[cached(key = "boxed:<id>", ttl = "1m")]
async fn boxed(id: u64) -> Result<Product, BoxError> {
    Ok(Product { id })
}

#[cached(key = "anyhow:<id>", ttl = "1m")]
async fn with_anyhow(id: u64) -> anyhow::Result<Product> {
    Ok(Product { id })
}

#[cached(key = "io:<id>", ttl = "1m")]
async fn io(id: u64) -> std::io::Result<Product> {
    Ok(Product { id })
}

#[cached(key = "thiserror:<id>", ttl = "1m")]
async fn with_thiserror(id: u64) -> Result<Product, DbError> {
    Ok(Product { id })
}

#[cached(key = "option:<id>", ttl = "1m")]
async fn option(id: u64) -> Option<Product> {
    Some(Product { id })
}

#[cached(key = "vec:<id>", ttl = "1m")]
async fn vec(id: u64) -> Vec<Product> {
    vec![Product { id }]
}

#[cached(key = "plain:<id>", ttl = "1m")]
async fn plain(id: u64) -> Product {
    Product { id }
}

#[cached(key = "cow:<name>", ttl = "1m")]
async fn cow(name: &'static str) -> Result<std::borrow::Cow<'static, str>, BoxError> {
    Ok(name.into())
}

fn main() {
    spawnable(boxed(1));
    spawnable(with_anyhow(1));
    spawnable(io(1));
    spawnable(with_thiserror(1));
    spawnable(option(1));
    spawnable(vec(1));
    spawnable(plain(1));
    spawnable(cow("x"));
    spawnable(boxed_refresh(1));
    spawnable(boxed_invalidate(1));
}
