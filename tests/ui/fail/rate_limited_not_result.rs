use redis_patterns::rate_limited;

#[rate_limited(key = "api:<user_id>", limit = 100, window = "1m")]
async fn handle(user_id: &str) -> String {
    user_id.to_owned()
}

#[rate_limited(key = "api2:<user_id>", limit = 100, window = "1m")]
async fn nothing(user_id: &str) {
    let _ = user_id;
}

fn main() {}
