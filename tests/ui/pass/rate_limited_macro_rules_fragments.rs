//! Every option of #[rate_limited] that takes a value, written through `macro_rules!`
//! fragments (`$x:literal`, `$x:expr`), resolves like one written in place.
use std::sync::LazyLock;

use redis_patterns::{Client, rate_limited};
use redis_patterns::rate_limit::RateLimited;

static CLIENT: LazyLock<Client> = LazyLock::new(|| Client::new("mem://rate-fragments").unwrap());

macro_rules! define {
    (
        $name:ident, $key:literal, $limit:literal, $window:literal, $algorithm:literal,
        $burst:literal, $cost:expr, $on_error:expr, $client:expr, $krate:literal
    ) => {
        #[rate_limited(
            key = $key,
            limit = $limit,
            window = $window,
            algorithm = $algorithm,
            burst = $burst,
            cost = $cost,
            on_error = $on_error,
            client = $client,
            crate = $krate
        )]
        async fn $name(user_id: u64) -> Result<u64, RateLimited> {
            Ok(user_id)
        }
    };
}

define!(
    api,
    "api:<user_id>",
    100,
    "1m",
    "token_bucket",
    20,
    2,
    "deny",
    &*CLIENT,
    "::redis_patterns"
);

fn main() {
    let _ = api(1);
}
