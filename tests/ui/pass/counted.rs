use std::sync::Arc;

use redis_patterns::{Client, counted};

#[derive(Debug)]
struct ApiError(String);

impl From<redis_patterns::Error> for ApiError {
    fn from(e: redis_patterns::Error) -> Self {
        ApiError(e.to_string())
    }
}

/// Any return type with the default `on_error = "ignore"`.
#[counted(key = "views:<page>", window = "1d")]
async fn show(page: &str) -> String {
    page.to_owned()
}

/// Without a key: one counter for the function; every option.
#[counted(window = 3600, keep = 48, on_error = "fail", client = client, crate = "::redis_patterns")]
async fn bill(client: &Client, cents: u64) -> Result<u64, ApiError> {
    let _ = client;
    Ok(cents)
}

struct Api {
    client: Arc<Client>,
    tenant: String,
}

impl Api {
    #[counted(key = "calls:<self.tenant>:<route>", window = "1m", client = self.client)]
    async fn call(&self, route: &str) -> usize {
        route.len()
    }
}

fn assert_send<T: Send>(_: &T) {}

fn main() {
    assert_send(&show("home"));
    let client = Client::new("mem://").unwrap();
    assert_send(&bill(&client, 1));
    let api = Api { client: Arc::new(client), tenant: "acme".into() };
    assert_send(&api.call("x"));
}
