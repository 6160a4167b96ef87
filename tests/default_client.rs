//! The process-wide default client. One test per binary: the default is set once per process.

use redis_patterns::cached;

#[cached(key = "greeting:<name>", ttl = "1m")]
async fn greeting(name: &str) -> String {
    format!("hello {name}")
}

#[tokio::test]
async fn a_malformed_redis_url_does_not_panic_and_functions_run_uncached() {
    // SAFETY: this binary has one test, and nothing else reads the environment concurrently.
    unsafe { std::env::set_var("REDIS_URL", "http://not-redis") };
    assert_eq!(greeting("ada").await, "hello ada");
    assert_eq!(greeting("ada").await, "hello ada");
    let client = redis_patterns::Client::default_client();
    assert!(client.config().is_none());
    let stats = client.cache_stats();
    assert_eq!((stats.hits, stats.backend_errors), (0, 2), "{stats:?}");
    let err = client.connect().await.unwrap_err();
    assert!(err.to_string().contains("REDIS_URL"), "{err}");
}
