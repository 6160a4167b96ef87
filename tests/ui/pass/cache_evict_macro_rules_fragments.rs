//! Every option of #[cache_evict] that takes a value, written through `macro_rules!`
//! fragments (`$x:literal`, `$x:expr`), resolves like one written in place.
use std::sync::LazyLock;

use redis_patterns::{Client, cache_evict};

static CLIENT: LazyLock<Client> = LazyLock::new(|| Client::new("mem://evict-fragments").unwrap());

macro_rules! define {
    ($name:ident, $other:ident, $key:literal, $key_expr:expr, $client:expr, $krate:literal) => {
        #[cache_evict(key = $key, client = $client, crate = $krate)]
        async fn $name(id: u64) -> Result<(), String> {
            let _ = id;
            Ok(())
        }

        #[cache_evict(key = $key_expr, client = $client, crate = $krate)]
        async fn $other(id: u64) {
            let _ = id;
        }
    };
}

define!(
    forget,
    forget_too,
    "product:<id>",
    "price:<id>",
    &*CLIENT,
    "::redis_patterns"
);

fn main() {
    let _ = forget(1);
    let _ = forget_too(1);
}
