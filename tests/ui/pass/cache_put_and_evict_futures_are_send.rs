//! #[cache_put] and #[cache_evict] functions' futures are `Send` for every common return
//! type, including errors whose type has a lifetime (`dyn Error + 'static`).

use std::future::Future;

use redis_patterns::{cache_evict, cache_put};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Product {
    id: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("database unavailable")]
struct DbError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn spawnable<F: Future + Send + 'static>(_: F) {}

#[cache_put(key = "product:<id>", ttl = "1m")]
async fn put_boxed(id: u64) -> Result<Product, BoxError> {
    Ok(Product { id })
}

#[cache_put(key = "product:<id>", ttl = "1m")]
async fn put_anyhow(id: u64) -> anyhow::Result<Product> {
    Ok(Product { id })
}

#[cache_put(key = "product:<id>", ttl = "1m")]
async fn put_io(id: u64) -> std::io::Result<Product> {
    Ok(Product { id })
}

#[cache_put(key = "product:<id>", ttl = "1m")]
async fn put_thiserror(id: u64) -> Result<Product, DbError> {
    Ok(Product { id })
}

#[cache_put(key = "products:<id>", ttl = "1m")]
async fn put_option_vec(id: u64) -> Option<Vec<Product>> {
    Some(vec![Product { id }])
}

#[cache_put(key = "product:<id>", ttl = "1m")]
async fn put_plain(id: u64) -> Product {
    Product { id }
}

#[cache_evict(key = "product:<id>")]
async fn evict_boxed(id: u64) -> Result<(), BoxError> {
    let _ = id;
    Ok(())
}

#[cache_evict(key = "product:<id>")]
async fn evict_anyhow(id: u64) -> anyhow::Result<()> {
    let _ = id;
    Ok(())
}

#[cache_evict(key = "product:<id>")]
async fn evict_io(id: u64) -> std::io::Result<()> {
    let _ = id;
    Ok(())
}

#[cache_evict(key = "product:<id>")]
async fn evict_thiserror(id: u64) -> Result<(), DbError> {
    let _ = id;
    Ok(())
}

#[cache_evict(key = "product:<id>")]
async fn evict_plain(id: u64) -> Vec<u64> {
    vec![id]
}

fn main() {
    spawnable(put_boxed(1));
    spawnable(put_anyhow(1));
    spawnable(put_io(1));
    spawnable(put_thiserror(1));
    spawnable(put_option_vec(1));
    spawnable(put_plain(1));
    spawnable(evict_boxed(1));
    spawnable(evict_anyhow(1));
    spawnable(evict_io(1));
    spawnable(evict_thiserror(1));
    spawnable(evict_plain(1));
}
