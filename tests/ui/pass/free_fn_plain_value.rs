use redis_patterns::cached;

#[cached(key = "stats:daily:<day>", ttl = "1h30m", ttl_jitter = "10%")]
async fn daily_total(day: u32) -> u64 {
    u64::from(day) * 3
}

#[cached(key = "config", ttl = "24h")]
async fn config() -> Vec<(String, String)> {
    Vec::new()
}

fn main() {
    let _ = daily_total(3);
    let _ = config();
}
