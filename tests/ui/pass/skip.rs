use redis_patterns::cached;

struct Db;

impl Db {
    async fn count(&self, table: &str) -> u64 {
        table.len() as u64
    }
}

// `db` is how the value is computed, not which value it is.
#[cached(key = "rows:<table>", ttl = "1m", skip(db, trace_id))]
async fn rows(db: &Db, table: &str, trace_id: u128) -> u64 {
    let _ = trace_id;
    db.count(table).await
}

// With the default key, skipped parameters are left out of it.
#[cached(ttl = "1m", skip(db))]
async fn rows_default_key(db: &Db, table: String) -> u64 {
    db.count(&table).await
}

fn main() {
    let _ = rows(&Db, "users", 1);
    let _: String = rows_key("users");
    let _ = rows_default_key(&Db, "users".into());
    let _: String = rows_default_key_key("users".into());
}
