use redis_patterns::{Client, cached};
use std::sync::LazyLock;

// Building a client does not connect: nothing here needs a server.
static SESSIONS: LazyLock<Client> =
    LazyLock::new(|| Client::new("redis://127.0.0.1:1/").expect("valid URL"));

#[cached(key = "session:<token>", ttl = "15m", client = &*SESSIONS)]
async fn session(token: String) -> Option<u64> {
    token.parse().ok()
}

fn main() {
    let _ = session("42".into());
    let _: String = session_key("42".into());
}
