use redis_patterns::counted;

/// Missing window, an unknown placeholder, a keep out of range, an unknown policy.
#[counted(key = "views:<pgae>", keep = 0, on_error = "ignor")]
async fn show(page: &str) -> usize {
    page.len()
}

#[counted(window = "1d", keep = 10001)]
async fn list() {}

fn main() {}
