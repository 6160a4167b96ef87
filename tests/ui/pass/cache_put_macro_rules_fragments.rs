//! Every option of #[cache_put] that takes a value, written through `macro_rules!` fragments
//! (`$x:literal`, `$x:expr`), resolves like one written in place.
use std::sync::LazyLock;

use redis_patterns::{Client, cache_put};

static CLIENT: LazyLock<Client> = LazyLock::new(|| Client::new("mem://put-fragments").unwrap());

macro_rules! define {
    (
        $name:ident, $key:literal, $ttl:expr, $jitter:literal, $codec:literal, $client:expr,
        $krate:literal
    ) => {
        #[cache_put(
            key = $key,
            ttl = $ttl,
            ttl_jitter = $jitter,
            codec = $codec,
            client = $client,
            crate = $krate
        )]
        async fn $name(id: u64) -> Result<u64, String> {
            Ok(id)
        }
    };
}

define!(
    store,
    "product:<id>",
    "5m",
    "2.5%",
    "msgpack",
    &*CLIENT,
    "::redis_patterns"
);

fn main() {
    let _ = store(1);
}
