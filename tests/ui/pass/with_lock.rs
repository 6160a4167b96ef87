use std::sync::{Arc, LazyLock};

use redis_patterns::lock::{LockError, fencing_token};
use redis_patterns::{Client, with_lock};

#[derive(Debug)]
struct PayError(String);

impl From<LockError> for PayError {
    fn from(e: LockError) -> Self {
        PayError(e.to_string())
    }
}

static PAYMENTS: LazyLock<Client> = LazyLock::new(|| Client::new("mem://payments").unwrap());

#[with_lock(key = "payment:<order_id>", ttl = "10s", wait = "2s")]
async fn pay(order_id: u64, amount_cents: u64) -> Result<u64, PayError> {
    let _ = (order_id, amount_cents);
    Ok(fencing_token().await?)
}

#[with_lock(key = "report:<day>", ttl = 30, wait = 0, retry = "10ms", extend = false, on_lost = "continue", fenced = true, client = &*PAYMENTS)]
async fn daily_report(day: &str) -> Result<(), PayError> {
    let _ = day;
    Ok(())
}

/// Without a key: one lock for the whole function. (`Box<dyn Error>` converts from
/// `LockError` like from any error.)
#[with_lock(ttl = "1m", client = client, crate = "::redis_patterns")]
async fn migrate(client: &Client) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let _ = client;
    Ok(())
}

struct Ledger {
    client: Arc<Client>,
    tenant: String,
}

impl Ledger {
    #[with_lock(key = "ledger:<self.tenant>:<account>", ttl = "5s", client = self.client)]
    async fn post(&self, account: u32) -> Result<(), PayError> {
        let _ = account;
        Ok(())
    }
}

fn main() {
    let _ = pay(1, 100);
    let _ = daily_report("2026-11-22");
    let client = Client::new("mem://").unwrap();
    let _ = migrate(&client);
    let ledger = Ledger {
        client: Arc::new(client),
        tenant: "acme".into(),
    };
    let _ = ledger.post(7);
}
