mod common;
use common::Kind;
use redis_patterns::{Client, cached};
use std::sync::atomic::{AtomicU32, Ordering};

static CALLS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "sq:<n>", ttl = "1m", client = client)]
async fn square(client: &Client, n: u64) -> Result<u64, String> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    Ok(n * n)
}

#[tokio::test]
async fn smoke() {
    for kind in [Kind::Redis, Kind::Memory] {
        let c = common::client(kind, "smoke");
        let before = CALLS.load(Ordering::SeqCst);
        assert_eq!(square(&c, 3).await, Ok(9));
        assert_eq!(square(&c, 3).await, Ok(9));
        assert_eq!(CALLS.load(Ordering::SeqCst) - before, 1, "{kind:?}");
        println!("{}", square_key(&c, 3));
    }
}
