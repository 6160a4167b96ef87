use redis_patterns::rate_limited;

#[derive(Debug)]
struct DbError;

#[rate_limited(key = "api:<user_id>", limit = 100, window = "1m")]
async fn handle(user_id: &str) -> Result<String, DbError> {
    Ok(user_id.to_owned())
}

fn main() {}
