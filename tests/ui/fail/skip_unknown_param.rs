use redis_patterns::cached;

struct Db;

#[cached(key = "rows:<table>", ttl = "1m", skip(dbb))]
async fn rows(db: &Db, table: String) -> u64 {
    let _ = db;
    table.len() as u64
}

fn main() {}
