use redis_patterns::job;

#[job(queue = "emails")]
fn send(mail: String) -> Result<(), String> {
    let _ = mail;
    Ok(())
}

fn main() {}
