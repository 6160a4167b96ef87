use redis_patterns::counted;

#[counted(key = "views:<page>", window = "1d")]
fn show(page: &str) -> usize {
    page.len()
}

fn main() {}
