//! `#[rate_limited]` on a real redis-server and on `mem://`: denial before the body, limits and
//! costs computed from the parameters, stacked limits, the failure policy. Each test runs on
//! both backends (`on_redis::…`, `on_memory::…`).

mod common;

use std::time::Duration;

use common::{Calls, Kind, RedisServer};
use redis_patterns::rate_limit::{DenyReason, RateLimited, RateLimiter};
use redis_patterns::{Client, Config, rate_limited};

#[derive(Debug)]
enum ApiError {
    Limited(RateLimited),
}

impl From<RateLimited> for ApiError {
    fn from(e: RateLimited) -> Self {
        ApiError::Limited(e)
    }
}

impl ApiError {
    fn limited(self) -> RateLimited {
        match self {
            ApiError::Limited(e) => e,
        }
    }
}

fn long() -> Duration {
    Duration::from_secs(1000 * 86_400)
}

#[rate_limited(key = "api:<user_id>", limit = 2, window = "1000d", client = client)]
async fn handle(client: &Client, calls: &Calls, user_id: &str) -> Result<String, ApiError> {
    calls.hit();
    Ok(format!("hello {user_id}"))
}

async fn a_denied_call_returns_rate_limited_without_running_the_body(kind: Kind) {
    let client = common::client(kind, "deny");
    let calls = Calls::default();
    assert_eq!(
        handle(&client, &calls, "alice").await.unwrap(),
        "hello alice"
    );
    assert!(handle(&client, &calls, "alice").await.is_ok());
    let denied = handle(&client, &calls, "alice")
        .await
        .unwrap_err()
        .limited();
    assert_eq!(calls.get(), 2, "the body did not run");
    assert_eq!(
        denied.name, "api:<user_id>",
        "the template, never the user's key"
    );
    assert_eq!((denied.limit, denied.remaining), (2, 0));
    assert_eq!(denied.reason, DenyReason::LimitExceeded);
    assert!(denied.retry_after > Duration::ZERO);
    assert!(
        handle(&client, &calls, "bob").await.is_ok(),
        "one limit per user"
    );
    assert!(
        redis_patterns::rate_limit::stats_by_template()
            .iter()
            .any(|(name, stats)| *name == "api:<user_id>" && stats.denied >= 1)
    );
}

#[rate_limited(
    key = "login:<ip>",
    limit = if signed_in { 3 } else { 1 },
    window = "1000d",
    algorithm = "gcra",
    burst = 2,
    client = client
)]
async fn login(client: &Client, ip: std::net::IpAddr, signed_in: bool) -> Result<(), ApiError> {
    let _ = (ip, signed_in);
    Ok(())
}

#[rate_limited(key = "search:<user>", limit = if premium { 3 } else { 1 }, window = "1000d", client = client)]
async fn search(client: &Client, user: &str, premium: bool) -> Result<(), ApiError> {
    let _ = (user, premium);
    Ok(())
}

async fn the_limit_can_be_an_expression_over_the_parameters(kind: Kind) {
    let client = common::client(kind, "dynamic-limit");
    for _ in 0..3 {
        assert!(search(&client, "premium-user", true).await.is_ok());
    }
    assert!(search(&client, "premium-user", true).await.is_err());
    assert!(search(&client, "free-user", false).await.is_ok());
    assert!(search(&client, "free-user", false).await.is_err());
    // GCRA with a burst: the burst bounds what is admitted at once.
    let ip = std::net::IpAddr::from([10, 0, 0, 1]);
    assert!(login(&client, ip, true).await.is_ok());
    assert!(login(&client, ip, true).await.is_ok());
    let denied = login(&client, ip, true).await.unwrap_err().limited();
    assert_eq!(
        denied.limit, 2,
        "GCRA reports its burst, as CL.THROTTLE does"
    );
}

#[rate_limited(key = "export:<user>", limit = 10, window = "1000d", cost = rows.len() as u64, client = client)]
async fn export(client: &Client, user: &str, rows: Vec<u32>) -> Result<usize, ApiError> {
    let _ = user;
    Ok(rows.len())
}

async fn a_cost_expression_consumes_several_units(kind: Kind) {
    let client = common::client(kind, "cost");
    assert_eq!(export(&client, "alice", vec![0; 6]).await.unwrap(), 6);
    let denied = export(&client, "alice", vec![0; 5])
        .await
        .unwrap_err()
        .limited();
    assert_eq!(denied.remaining, 4);
    assert_eq!(export(&client, "alice", vec![0; 4]).await.unwrap(), 4);
}

// Stacked: the outer limit is generous, the inner one tight. Calls the inner one denies must
// not use up the outer one.
macro_rules! stacked {
    ($name:ident, $algorithm:literal) => {
        #[rate_limited(key = "outer:<user>", limit = 5, window = "1000d", algorithm = $algorithm, client = client)]
        #[rate_limited(key = "inner:<user>", limit = 2, window = "1000d", client = client)]
        async fn $name(client: &Client, calls: &Calls, user: &str) -> Result<(), ApiError> {
            let _ = user;
            calls.hit();
            Ok(())
        }
    };
}
stacked!(stacked_fixed_window, "fixed_window");
stacked!(stacked_sliding_window, "sliding_window");
stacked!(stacked_sliding_window_counter, "sliding_window_counter");
stacked!(stacked_token_bucket, "token_bucket");
stacked!(stacked_gcra, "gcra");

async fn a_call_denied_by_one_stacked_limit_consumes_nothing_from_the_others(kind: Kind) {
    let client = common::client(kind, "stacked");
    let calls = Calls::default();
    for _ in 0..4 {
        let _ = stacked_fixed_window(&client, &calls, "u").await;
        let _ = stacked_sliding_window(&client, &calls, "u").await;
        let _ = stacked_sliding_window_counter(&client, &calls, "u").await;
        let _ = stacked_token_bucket(&client, &calls, "u").await;
        let _ = stacked_gcra(&client, &calls, "u").await;
    }
    // The inner limit is shared by the five functions (same template, algorithm and window).
    assert_eq!(calls.get(), 2);
    let outer = [
        RateLimiter::fixed_window(5, long()),
        RateLimiter::sliding_window(5, long()),
        RateLimiter::sliding_window_counter(5, long()),
        RateLimiter::token_bucket(5, long(), 5),
        RateLimiter::gcra(5, long(), 5),
    ];
    let mut consumed = 0;
    for limiter in outer {
        let d = limiter
            .client(client.clone())
            .check("outer:u", 0)
            .await
            .unwrap();
        consumed += 5 - d.remaining;
    }
    assert_eq!(
        consumed, 2,
        "only the two admitted calls count against the outer limits"
    );
}

#[rate_limited(key = "burst:<user>", limit = 2, window = "200ms", client = client)]
#[rate_limited(key = "daily:<user>", limit = 1000, window = "1d", client = client)]
async fn two_windows(client: &Client, user: &str) -> Result<(), ApiError> {
    let _ = user;
    Ok(())
}

async fn stacked_limits_all_apply_and_the_short_one_refills(kind: Kind) {
    let client = common::client(kind, "two-windows");
    assert!(two_windows(&client, "u").await.is_ok());
    assert!(two_windows(&client, "u").await.is_ok());
    let denied = two_windows(&client, "u").await.unwrap_err().limited();
    assert_eq!(denied.name, "burst:<user>");
    tokio::time::sleep(denied.retry_after + Duration::from_millis(3)).await;
    assert!(two_windows(&client, "u").await.is_ok());
    let daily =
        RateLimiter::sliding_window(1000, Duration::from_secs(86_400)).client(client.clone());
    assert_eq!(daily.check("daily:u", 0).await.unwrap().remaining, 997);
}

struct Service {
    client: Client,
    tenant: String,
}

impl Service {
    #[rate_limited(key = "tenant:<self.tenant>:<action>", limit = 1, window = "1000d", client = self.client)]
    async fn act(&self, action: &str) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        Ok(format!("{} did {action}", self.tenant))
    }
}

async fn methods_can_key_and_pick_the_client_through_self(kind: Kind) {
    let service = Service {
        client: common::client(kind, "method"),
        tenant: "acme".into(),
    };
    assert_eq!(service.act("sync").await.unwrap(), "acme did sync");
    let err = service.act("sync").await.unwrap_err();
    assert!(err.downcast_ref::<RateLimited>().is_some(), "{err}");
    assert!(service.act("export").await.is_ok());
}

#[rate_limited(limit = 1, window = "1000d", client = client)]
async fn whole_function(client: &Client) -> Result<(), ApiError> {
    Ok(())
}

async fn without_a_key_one_limit_covers_the_whole_function(kind: Kind) {
    let client = common::client(kind, "default-key");
    assert!(whole_function(&client).await.is_ok());
    let denied = whole_function(&client).await.unwrap_err().limited();
    assert!(denied.name.ends_with("::whole_function"), "{}", denied.name);
}

#[rate_limited(key = "extreme:<id>", limit = limit, window = "1000d", algorithm = "gcra", cost = cost, client = client)]
#[rate_limited(key = "extreme:<id>", limit = limit, window = "1ms", cost = cost, client = client)]
async fn extreme(client: &Client, id: u32, limit: u64, cost: u64) -> Result<(), ApiError> {
    let _ = id;
    Ok(())
}

async fn extreme_limit_and_cost_expressions_are_clamped_and_never_panic(kind: Kind) {
    let client = common::client(kind, "extreme-expressions");
    let mut id = 0;
    for limit in [0, 1, 1 << 40, u64::MAX] {
        for cost in [0, 1, 1 << 40, (1 << 40) + 1, u64::MAX] {
            id += 1;
            // A fresh key: both limits admit exactly what fits their (clamped) capacity.
            let admitted = extreme(&client, id, limit, cost).await.is_ok();
            assert_eq!(
                admitted,
                cost <= limit.min(1 << 40),
                "limit {limit}, cost {cost}"
            );
        }
    }
}

on_both_backends!(
    extreme_limit_and_cost_expressions_are_clamped_and_never_panic,
    a_denied_call_returns_rate_limited_without_running_the_body,
    the_limit_can_be_an_expression_over_the_parameters,
    a_cost_expression_consumes_several_units,
    a_call_denied_by_one_stacked_limit_consumes_nothing_from_the_others,
    stacked_limits_all_apply_and_the_short_one_refills,
    methods_can_key_and_pick_the_client_through_self,
    without_a_key_one_limit_covers_the_whole_function,
);

#[rate_limited(key = "open:<id>", limit = 1, window = "1000d", client = client)]
async fn fail_open(client: &Client, calls: &Calls, id: u32) -> Result<u32, ApiError> {
    calls.hit();
    Ok(id)
}

#[rate_limited(key = "closed:<id>", limit = 1, window = "1000d", on_error = "deny", client = client)]
async fn fail_closed(client: &Client, calls: &Calls, id: u32) -> Result<u32, ApiError> {
    calls.hit();
    Ok(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_server_stopped_on_error_allow_runs_the_body_and_deny_returns_rate_limited() {
    let server = RedisServer::start();
    let config = Config::from_url(&server.url())
        .unwrap()
        .namespace(common::namespace("policy"))
        .connect_timeout(Duration::from_millis(200))
        .command_timeout(Duration::from_millis(200))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200));
    let client = Client::new(config).unwrap();
    let calls = Calls::default();
    server.stop();
    let bounded = Duration::from_secs(3);
    for id in 0..5 {
        let open = tokio::time::timeout(bounded, fail_open(&client, &calls, id))
            .await
            .expect("no call hangs past the timeouts");
        assert_eq!(open.unwrap(), id);
        let closed = tokio::time::timeout(bounded, fail_closed(&client, &calls, id))
            .await
            .expect("no call hangs past the timeouts");
        let denied = closed.unwrap_err().limited();
        assert_eq!(denied.reason, DenyReason::BackendUnavailable);
    }
    assert_eq!(calls.get(), 5, "only the fail-open function ran");
    let stats = redis_patterns::rate_limit::stats_by_template();
    let errors = |template: &str| {
        stats
            .iter()
            .filter(|(name, _)| *name == template)
            .map(|(_, s)| s.backend_errors)
            .sum::<u64>()
    };
    assert_eq!((errors("open:<id>"), errors("closed:<id>")), (5, 5));
}

#[rate_limited(key = "first:<id>", limit = 1, window = "1000d", client = fast)]
#[rate_limited(key = "second:<id>", limit = 1, window = "1000d", client = stalled)]
async fn two_servers(fast: &Client, stalled: &Client, id: u32) -> Result<(), ApiError> {
    let _ = id;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stacked_call_cancelled_between_limits_gives_back_what_it_took() {
    let fast = common::client(Kind::Redis, "cancelled-first");
    let server = RedisServer::start();
    let stalled = Client::new(
        Config::from_url(&server.url())
            .unwrap()
            .namespace(common::namespace("cancelled-second"))
            .command_timeout(Duration::from_secs(5)),
    )
    .unwrap();
    stalled.connect().await.unwrap();
    // Stall the second limit's server, so the call is cancelled after the first limit took
    // its unit and while the second is still deciding.
    let blocker = server.stall(1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let call = tokio::time::timeout(Duration::from_millis(300), two_servers(&fast, &stalled, 1));
    assert!(
        call.await.is_err(),
        "cancelled while the second limit was stalled"
    );
    blocker.join().unwrap();
    // The first limit's unit comes back from a background task.
    let first = RateLimiter::sliding_window(1, Duration::from_secs(1000 * 86_400)).client(fast);
    let mut given_back = false;
    for _ in 0..100 {
        let d = first.check("first:1", 0).await.unwrap();
        if d.remaining == 1 {
            given_back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        given_back,
        "the unit taken before the cancellation was given back"
    );
}
