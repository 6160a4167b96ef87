use redis_patterns::stream_consumer;

#[stream_consumer(stream = "orders", group = "billing", concurency = 4, client = client)]
async fn bill(order: u64) -> Result<(), String> {
    let _ = order;
    Ok(())
}

fn main() {}
