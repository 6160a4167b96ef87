use redis_patterns::counted;

#[counted(window = "1d", on_error = "fail")]
async fn show(page: &str) -> usize {
    page.len()
}

#[derive(Debug)]
struct NotFromError;

#[counted(window = "1d", on_error = "fail")]
async fn save(page: &str) -> Result<(), NotFromError> {
    let _ = page;
    Ok(())
}

fn main() {}
