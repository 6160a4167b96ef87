use redis_patterns::cached;

struct Repo {
    tenant: String,
}

impl Repo {
    #[cached(key = "orders:<self.tenant>:<page>", ttl = "2m")]
    async fn orders(&self, page: u32) -> Result<Vec<u64>, String> {
        Ok(vec![u64::from(page), self.tenant.len() as u64])
    }

    async fn first_page(&self) -> Result<Vec<u64>, String> {
        self.orders(0).await
    }
}

fn main() {
    let repo = Repo {
        tenant: "acme".into(),
    };
    let _ = repo.first_page();
    let _: String = repo.orders_key(1);
    let _ = repo.orders_invalidate(1);
    let _ = repo.orders_refresh(1);
}
