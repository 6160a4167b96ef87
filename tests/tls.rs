//! `rediss://` against a real TLS-only `redis-server` (feature `tls`): caching, locks and rate
//! limits work over TLS with a private CA, and a wrong CA is a clear, typed error.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::RedisServer;
use common::tls::Certificates;
use redis_patterns::lock::Lock;
use redis_patterns::rate_limit::RateLimiter;
use redis_patterns::{Client, Config, Error, cached};

/// One TLS server (and the certificates it uses) for the whole binary.
fn tls_server() -> &'static (Certificates, RedisServer) {
    static SERVER: OnceLock<(Certificates, RedisServer)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let certificates = Certificates::generate();
        let server = RedisServer::start_tls(certificates.server_files());
        (certificates, server)
    })
}

fn tls_client(test: &str, ca_pem: Vec<u8>) -> Client {
    let (_, server) = tls_server();
    let config = Config::from_url(&format!("rediss://127.0.0.1:{}", server.port()))
        .unwrap()
        .namespace(common::namespace(test))
        .command_timeout(Duration::from_secs(2))
        .tls_root_certificate(ca_pem);
    Client::new(config).unwrap()
}

#[cached(key = "secure:<id>", ttl = "1m", stampede = "lock", client = client)]
async fn secure(client: &Client, id: u32) -> Result<String, String> {
    Ok(format!("secret {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_locks_and_limits_work_over_tls() {
    let (certificates, _) = tls_server();
    let client = tls_client("tls-ok", certificates.ca_pem());
    client
        .connect()
        .await
        .expect("a TLS connection with the right CA");

    assert_eq!(secure(&client, 1).await.unwrap(), "secret 1");
    assert_eq!(secure(&client, 1).await.unwrap(), "secret 1");
    let stats = client.cache_stats();
    assert_eq!((stats.hits, stats.backend_errors), (1, 0), "{stats:?}");

    let guard = Lock::new("tls-job")
        .client(&client)
        .acquire()
        .await
        .unwrap();
    assert!(guard.fencing_token().await.unwrap() > 0);
    guard.release().await.unwrap();

    let limiter = RateLimiter::sliding_window(2, Duration::from_secs(60)).client(client.clone());
    assert!(limiter.check("tls:alice", 1).await.unwrap().allowed);
    assert!(limiter.check("tls:alice", 1).await.unwrap().allowed);
    assert!(!limiter.check("tls:alice", 1).await.unwrap().allowed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_from_another_ca_is_a_tls_error() {
    let _ = tls_server();
    let stranger = Certificates::generate();
    let client = tls_client("tls-wrong-ca", stranger.ca_pem());
    let error = client
        .connect()
        .await
        .expect_err("the certificate is not trusted");
    assert!(matches!(error, Error::Tls(_)), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("certificate"), "{message}");
    assert!(
        message.contains("tls_root_certificate"),
        "says what to do: {message}"
    );
    // Caching fails open meanwhile.
    assert_eq!(secure(&client, 2).await.unwrap(), "secret 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_text_to_a_tls_port_fails_within_the_timeouts() {
    let (_, server) = tls_server();
    let config = Config::from_url(&server.url())
        .unwrap()
        .connect_timeout(Duration::from_millis(500))
        .command_timeout(Duration::from_millis(500));
    let client = Client::new(config).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(3), client.connect()).await;
    assert!(matches!(result, Ok(Err(_))), "{result:?}");
}
