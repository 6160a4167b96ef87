use redis_patterns::job;

#[job]
async fn no_queue(mail: String) -> Result<(), String> {
    let _ = mail;
    Ok(())
}

#[job(queue = "emails")]
async fn not_a_result(mail: String) -> bool {
    mail.is_empty()
}

#[job(queue = "emails")]
async fn wrong_context(mail: String, attempt: u64) -> Result<(), String> {
    let _ = (mail, attempt);
    Ok(())
}

#[job(queue = "emails")]
async fn borrowed(mail: &str) -> Result<(), String> {
    let _ = mail;
    Ok(())
}

fn main() {}
