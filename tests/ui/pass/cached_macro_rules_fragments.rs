//! Every option of #[cached] that takes a value, written through `macro_rules!` fragments
//! (`$x:literal`, `$x:expr`, `$x:ident`), resolves like one written in place.
use std::sync::LazyLock;

use redis_patterns::{Client, cached};

static CLIENT: LazyLock<Client> = LazyLock::new(|| Client::new("mem://cached-fragments").unwrap());

macro_rules! define {
    (
        $locked:ident, $early:ident, $key:literal, $ttl:literal, $jitter:literal, $lock:literal,
        $lock_ttl:literal, $lock_wait:literal, $early_mode:expr, $beta:literal, $ttl_expr:expr,
        $cache_none:literal, $skip:ident, $client:expr, $krate:literal, $codec:literal
    ) => {
        #[cached(
            key = $key,
            ttl = $ttl,
            ttl_jitter = $jitter,
            stampede = $lock,
            codec = $codec,
            lock_ttl = $lock_ttl,
            lock_wait = $lock_wait,
            cache_none = $cache_none,
            skip($skip),
            client = $client,
            crate = $krate
        )]
        async fn $locked(id: u64, $skip: u32) -> Option<u64> {
            let _ = $skip;
            Some(id)
        }

        #[cached(ttl = $ttl_expr, stampede = $early_mode, beta = $beta, client = $client)]
        async fn $early(id: u64) -> u64 {
            id
        }
    };
}

define!(
    price,
    rank,
    "price:<id>",
    "1m",
    "10%",
    "lock",
    "5s",
    "1s",
    "early",
    1.5,
    60,
    true,
    attempt,
    &*CLIENT,
    "::redis_patterns",
    "msgpack"
);

fn main() {
    let _ = price(1, 2);
    let _ = price_key(1);
    let _ = price_invalidate(1);
    let _ = price_refresh(1, 2);
    let _ = rank(1);
}
