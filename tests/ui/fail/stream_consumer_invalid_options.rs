use redis_patterns::stream_consumer;

#[stream_consumer(group = "", concurrency = 0, max_deliveries = 5000, visibility = "10ms", batch = "8")]
async fn bill(order: u64) -> Result<(), String> {
    let _ = order;
    Ok(())
}

fn main() {}
