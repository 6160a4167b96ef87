//! Attribute options written as `macro_rules!` fragments (`$client:expr`, `$limit:expr`,
//! `$cost:expr`) resolve like literal ones.
use std::sync::LazyLock;

use redis_patterns::{Client, cached, rate_limited};
use redis_patterns::rate_limit::RateLimited;

#[derive(Debug)]
struct ApiError;

impl From<RateLimited> for ApiError {
    fn from(_: RateLimited) -> Self {
        ApiError
    }
}

static CLIENT: LazyLock<Client> = LazyLock::new(|| Client::new("mem://fragments").unwrap());

macro_rules! define {
    ($cached:ident, $limited:ident, $client:expr, $limit:expr, $cost:expr) => {
        #[cached(key = "price:<id>", ttl = "1m", client = $client)]
        async fn $cached(id: u64) -> u64 {
            id
        }

        #[rate_limited(key = "api:<id>", limit = $limit, window = "1m", cost = $cost, client = $client)]
        async fn $limited(id: u64) -> Result<u64, ApiError> {
            Ok(id)
        }
    };
}

define!(price, api, &*CLIENT, 5, 2);

fn main() {
    let _ = price(1);
    let _ = api(1);
}
