//! A small product service with a slow database, cached with one attribute.
//!
//! ```text
//! cargo run --example quickstart                                # in-process cache (mem://)
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example quickstart  # on a Redis server
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use redis_patterns::{cache_evict, cached};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Product {
    id: u64,
    name: String,
    price_cents: u64,
}

#[derive(Debug)]
struct DbError(String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "database error: {}", self.0)
    }
}

impl std::error::Error for DbError {}

/// The "database": every query takes 200 ms, and we count them.
mod db {
    use super::*;

    pub static QUERIES: AtomicU32 = AtomicU32::new(0);

    pub async fn load_product(id: u64) -> Result<super::Product, DbError> {
        QUERIES.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        if id == 0 {
            return Err(DbError("no product 0".into()));
        }
        Ok(Product {
            id,
            name: format!("Product #{id}"),
            price_cents: 1_000 + id,
        })
    }

    pub async fn rename_product(id: u64, name: &str) -> Result<(), DbError> {
        QUERIES.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = (id, name);
        Ok(())
    }
}

/// Cached for 5 minutes; on a miss only one caller (across all instances) queries the
/// database while the others wait for its result.
#[cached(key = "product:<id>", ttl = "5m", stampede = "lock")]
async fn product(id: u64) -> Result<Product, DbError> {
    db::load_product(id).await
}

/// Renaming evicts the cached product once the database write succeeded.
#[cache_evict(key = "product:<id>")]
async fn rename(id: u64, name: &str) -> Result<(), DbError> {
    db::rename_product(id, name).await
}

fn queries() -> u32 {
    db::QUERIES.load(Ordering::SeqCst)
}

async fn timed<T>(label: &str, f: impl std::future::Future<Output = T>) -> T {
    let (start, before) = (Instant::now(), queries());
    let out = f.await;
    println!(
        "{label:<46} {:>9.2?}   database queries: {}",
        start.elapsed(),
        queries() - before
    );
    out
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "redis_patterns=warn".into()),
        )
        .init();

    // One line at start-up: REDIS_URL if set, otherwise the in-process backend.
    let client = redis_patterns::init_from_env().await?;
    println!(
        "cache backend: {}\n",
        client.config().map(ToString::to_string).unwrap_or_default()
    );
    // Start from a clean slate when the example runs again against the same Redis.
    for id in [1, 2] {
        product_invalidate(id).await?;
    }

    timed("product(1), cold: miss, queries the database", product(1)).await?;
    timed("product(1) again: hit", product(1)).await?;

    let herd = futures::future::join_all((0..100).map(|_| product(2)));
    let results = timed("100 concurrent product(2) on a cold key", herd).await;
    assert!(results.iter().all(Result::is_ok));

    timed("rename(1): database write, then evict", rename(1, "Lamp")).await?;
    timed("product(1) after the rename: miss", product(1)).await?;
    timed("product(1): hit again", product(1)).await?;

    let err = timed("product(0): an error, which is not cached", product(0)).await;
    println!("    -> {err:?}");

    let stats = client.cache_stats();
    println!(
        "\nhits {}, misses {}, hit rate {:.0}%, key of product 1: {}",
        stats.hits,
        stats.misses,
        stats.hit_rate().unwrap_or(0.0) * 100.0,
        product_key(1)
    );
    Ok(())
}
