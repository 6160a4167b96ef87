use redis_patterns::stream::Delivery;
use redis_patterns::stream_consumer;

struct NotDisplay;

#[stream_consumer(stream = "orders", group = "a")]
async fn no_event() -> Result<(), String> {
    Ok(())
}

#[stream_consumer(stream = "orders", group = "b")]
async fn too_many(order: u64, delivery: Delivery, extra: u8) -> Result<(), String> {
    let _ = (order, delivery, extra);
    Ok(())
}

#[stream_consumer(stream = "orders", group = "c")]
async fn no_result(order: u64) {
    let _ = order;
}

#[stream_consumer(stream = "orders", group = "d")]
async fn not_unit(order: u64) -> Result<u64, String> {
    Ok(order)
}

#[stream_consumer(stream = "orders", group = "e")]
async fn error_not_display(order: u64) -> Result<(), NotDisplay> {
    let _ = order;
    Ok(())
}

#[stream_consumer(stream = "orders", group = "f")]
async fn borrowed(order: &'static str) -> Result<(), String> {
    let _ = order;
    Ok(())
}

#[stream_consumer(stream = "orders", group = "g")]
async fn wrong_delivery(order: u64, id: u64) -> Result<(), String> {
    let _ = (order, id);
    Ok(())
}

#[stream_consumer(stream = "orders", group = "h")]
async fn generic<T>(order: u64) -> Result<(), String> {
    let _ = order;
    Ok(())
}

fn main() {}
