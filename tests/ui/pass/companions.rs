use redis_patterns::cached;

#[cached(
    key = "catalog:<region>:<page>",
    ttl = "5m",
    stampede = "lock",
    lock_ttl = "5s",
    lock_wait = "2s"
)]
async fn catalog(region: String, page: u32) -> Result<Vec<String>, String> {
    Ok(vec![format!("{region}:{page}")])
}

#[cached(key = "hot:<id>", ttl = "1m", stampede = "early", beta = 2.0)]
async fn hot(id: u64) -> u64 {
    id
}

async fn use_companions() -> Result<(), redis_patterns::Error> {
    let key: String = catalog_key("eu".into(), 1);
    let _ = key;
    let _existed: bool = catalog_invalidate("eu".into(), 1).await?;
    let _fresh: Result<Vec<String>, String> = catalog_refresh("eu".into(), 1).await;
    let _ = hot_refresh(1).await;
    Ok(())
}

fn main() {
    let _ = use_companions();
}
