use redis_patterns::cached;

// The attribute is wrong, but the function and its companions still exist: the calls below add
// no errors of their own.
#[cached(key = "product:<id>", ttl = "5m", stampede = "lok")]
async fn product(id: u64) -> Option<String> {
    Some(id.to_string())
}

async fn callers() -> Result<(), redis_patterns::Error> {
    let _: Option<String> = product(7).await;
    let _: String = product_key(7);
    let _: bool = product_invalidate(7).await?;
    let _: Option<String> = product_refresh(7).await;
    Ok(())
}

fn main() {
    let _ = callers();
}
