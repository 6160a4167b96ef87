use redis_patterns::{Client, rate_limited};
use redis_patterns::rate_limit::RateLimited;
use std::net::IpAddr;

#[derive(Debug)]
struct ApiError;

impl From<RateLimited> for ApiError {
    fn from(_: RateLimited) -> Self {
        ApiError
    }
}

// Every algorithm and option; `limit` and `cost` may be expressions over the parameters.
#[rate_limited(key = "api:<user_id>", limit = 100, window = "1m")]
async fn handle(user_id: &str) -> Result<String, ApiError> {
    Ok(user_id.to_owned())
}

#[rate_limited(
    key = "login:<ip>",
    limit = if signed_in { 100 } else { 20 },
    window = "1m",
    algorithm = "gcra",
    burst = 10,
    on_error = "deny"
)]
async fn login(ip: IpAddr, signed_in: bool) -> Result<(), ApiError> {
    let _ = (ip, signed_in);
    Ok(())
}

#[rate_limited(key = "upload:<user>", limit = 10, window = 60, algorithm = "token_bucket", burst = 20, cost = bytes.len() as u64 / 1024 + 1)]
#[rate_limited(
    key = "upload-day:<user>",
    limit = 1000,
    window = "1d",
    algorithm = "fixed_window"
)]
#[rate_limited(
    key = "upload-any:<user>",
    limit = 50,
    window = "10s",
    algorithm = "sliding_window_counter",
    on_error = "allow"
)]
async fn upload(
    user: u64,
    bytes: Vec<u8>,
) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let _ = user;
    Ok(bytes.len())
}

// The whole function shares one limit when no key is given.
#[rate_limited(limit = 5, window = "1s", algorithm = "sliding_window", client = client, crate = "::redis_patterns")]
async fn nightly_job(client: &Client) -> Result<(), ApiError> {
    Ok(())
}

struct Service {
    client: Client,
    tenant: String,
}

impl Service {
    #[rate_limited(key = "tenant:<self.tenant>", limit = self.quota(), window = "1h", client = self.client)]
    async fn act(&self) -> Result<(), ApiError> {
        Ok(())
    }

    fn quota(&self) -> u64 {
        1000
    }
}

fn main() {
    let client = Client::new("mem://").expect("valid URL");
    let _ = handle("alice");
    let _ = login(IpAddr::from([127, 0, 0, 1]), false);
    let _ = upload(7, vec![0; 4096]);
    let _ = nightly_job(&client);
    let service = Service {
        client,
        tenant: "acme".into(),
    };
    let _ = service.act();
}
