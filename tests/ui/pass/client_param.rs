use redis_patterns::{Client, cached};
use std::sync::Arc;

// A parameter used by `client = …` is the client's, not key data: no `skip` needed.
#[cached(key = "sq:<n>", ttl = "1m", client = client)]
async fn square(client: &Client, n: u64) -> Result<u64, String> {
    Ok(n * n)
}

#[cached(key = "cube:<n>", ttl = "1m", client = client)]
async fn cube(client: Arc<Client>, n: u64) -> u64 {
    n * n * n
}

struct Service {
    cache: Client,
}

impl Service {
    #[cached(key = "double:<n>", ttl = "1m", client = &self.cache)]
    async fn double(&self, n: u64) -> u64 {
        n * 2
    }
}

fn main() {
    let client = Client::new("mem://").expect("valid URL");
    let _ = square(&client, 3);
    let _: String = square_key(&client, 3);
    let _ = square_invalidate(&client, 3);
    let _ = cube(Arc::new(client.clone()), 2);
    let service = Service { cache: client };
    let _ = service.double(4);
    let _: String = service.double_key(4);
}
