//! Every option of #[with_lock] that takes a value, written through `macro_rules!` fragments
//! (`$x:literal`, `$x:expr`), resolves like one written in place.
use std::sync::LazyLock;

use redis_patterns::lock::LockError;
use redis_patterns::{Client, with_lock};

static CLIENT: LazyLock<Client> = LazyLock::new(|| Client::new("mem://lock-fragments").unwrap());

macro_rules! define {
    (
        $name:ident, $key:literal, $ttl:literal, $wait:expr, $retry:literal, $extend:literal,
        $on_lost:literal, $client:expr, $krate:literal
    ) => {
        #[with_lock(
            key = $key,
            ttl = $ttl,
            wait = $wait,
            retry = $retry,
            extend = $extend,
            on_lost = $on_lost,
            client = $client,
            crate = $krate
        )]
        async fn $name(order_id: u64) -> Result<u64, LockError> {
            Ok(order_id)
        }
    };
}

define!(
    pay,
    "payment:<order_id>",
    "10s",
    2,
    "10ms",
    false,
    "continue",
    &*CLIENT,
    "::redis_patterns"
);

fn main() {
    let _ = pay(1);
}
