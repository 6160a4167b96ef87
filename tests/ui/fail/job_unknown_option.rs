use redis_patterns::job;

#[job(queue = "emails", max_attempt = 3, group = "billing")]
async fn send(mail: String) -> Result<(), String> {
    let _ = mail;
    Ok(())
}

fn main() {}
