use redis_patterns::cached;

#[cached(key = "config", ttl = "5m")]
struct Config {
    name: String,
}

fn main() {
    let _ = Config {
        name: String::new(),
    };
}
