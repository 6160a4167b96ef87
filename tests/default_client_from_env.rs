//! Without `REDIS_URL`, the default client is the in-process `mem://` backend.

use redis_patterns::cached;

#[cached(key = "greeting:<name>", ttl = "1m")]
async fn greeting(name: &str) -> String {
    format!("hello {name}")
}

#[tokio::test]
async fn without_redis_url_the_default_client_caches_in_memory() {
    // SAFETY: this binary has one test, and nothing else reads the environment concurrently.
    unsafe { std::env::remove_var("REDIS_URL") };
    assert_eq!(greeting("ada").await, "hello ada");
    assert_eq!(greeting("ada").await, "hello ada");
    let client = redis_patterns::Client::default_client();
    assert!(client.config().unwrap().is_memory());
    assert_eq!(client.cache_stats().hits, 1);
    assert_eq!(greeting_key("ada"), "{greeting:#ada}");
    assert!(client.set_as_default().is_err(), "the default is set once");
}
