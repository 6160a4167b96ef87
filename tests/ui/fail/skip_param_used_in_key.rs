use redis_patterns::cached;

#[cached(key = "rows:<table>", ttl = "1m", skip(table))]
async fn rows(table: String) -> u64 {
    table.len() as u64
}

fn main() {}
