//! `#[stream_consumer]` handlers with and without the delivery, visibility and docs kept,
//! every option, and the constant used as a consumer.

use redis_patterns::stream::{self, Consumer, Delivery, EventId};
use redis_patterns::stream_consumer;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct Order {
    pub cents: u64,
}

#[derive(Debug)]
pub struct BillingError;

impl std::fmt::Display for BillingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("billing failed")
    }
}

/// Bills an order.
#[stream_consumer(stream = "orders", group = "billing")]
pub async fn bill(order: Order) -> Result<(), BillingError> {
    if order.cents == 0 {
        return Err(BillingError);
    }
    Ok(())
}

#[stream_consumer(
    stream = "orders",
    group = "audit",
    concurrency = 2,
    max_deliveries = 3,
    visibility = "10s",
    batch = 16,
    retry_backoff = "1s",
    crate = "::redis_patterns"
)]
async fn audit(order: Order, delivery: Delivery) -> Result<(), String> {
    let _ = (order.cents, delivery.id(), delivery.deliveries());
    Ok(())
}

mod workers {
    use super::Order;

    #[redis_patterns::stream_consumer(stream = "orders", group = "mail")]
    pub(crate) async fn mail(_order: Order) -> Result<(), std::io::Error> {
        Ok(())
    }
}

fn consumers() -> Vec<Consumer<Order>> {
    vec![bill, audit.concurrency(4), workers::mail]
}

async fn run() -> redis_patterns::Result<()> {
    let _ = bill.handle(Order { cents: 1 }, Delivery::new(EventId::default(), 1)).await;
    stream::run(audit).await
}

fn main() {
    let _ = consumers();
    let _ = run;
}
