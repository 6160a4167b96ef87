use redis_patterns::counted;

#[counted(key = "views:<page>", window = "1d", kepe = 7)]
async fn show(page: &str) -> usize {
    page.len()
}

fn main() {}
