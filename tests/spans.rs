//! The tracing spans of the patterns, captured by a subscriber of the test's own on a real
//! redis-server: one per pattern call (`cache`, `rate_limit`, `lock`) with the template and the
//! outcome, and one per round trip (`redis`) in OpenTelemetry's database conventions, inside
//! its call's span.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use redis_patterns::lock::LockError;
use redis_patterns::rate_limit::RateLimited;
use redis_patterns::{Client, cached, rate_limited, with_lock};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A closed or open span: its name, its fields as text, and its parent's name.
#[derive(Debug, Clone, Default)]
struct Captured {
    name: String,
    fields: BTreeMap<String, String>,
    parent: Option<String>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

/// The span's index in the capture, kept in the registry's extensions.
struct Index(usize);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut captured = Captured {
            name: attrs.metadata().name().to_owned(),
            ..Captured::default()
        };
        attrs.record(&mut Fields(&mut captured.fields));
        let span = ctx.span(id).expect("a new span is registered");
        captured.parent = span.parent().map(|p| p.name().to_owned());
        let mut spans = self.0.lock().unwrap();
        span.extensions_mut().insert(Index(spans.len()));
        spans.push(captured);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).expect("a recorded span is registered");
        if let Some(Index(i)) = span.extensions().get::<Index>() {
            values.record(&mut Fields(&mut self.0.lock().unwrap()[*i].fields));
        }
    }
}

impl Capture {
    /// The spans named `name` whose field `field` is `value`.
    fn named(&self, name: &str, field: &str, value: &str) -> Vec<Captured> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.name == name && s.fields.get(field).is_some_and(|v| v == value))
            .cloned()
            .collect()
    }
}

/// A current-thread runtime with the capture as this thread's subscriber: every span of the
/// test is created on this thread.
fn run(test: impl std::future::Future<Output = ()>) -> Capture {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _default = tracing::subscriber::set_default(subscriber);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(test);
    capture
}

#[cached(key = "s-product:<id>", ttl = "1m", stampede = "lock", client = client)]
async fn product(client: &Client, id: u64) -> u64 {
    id
}

#[test]
fn a_cached_call_has_a_span_with_its_outcome_around_its_round_trips() {
    let server = common::server();
    let port = server.port().to_string();
    let captured = run(async {
        let client = common::client(common::Kind::Redis, "spans-cache");
        product(&client, 1).await;
        product(&client, 1).await;
    });
    let calls = captured.named("cache", "cache", "s-product:<id>");
    let outcomes: Vec<_> = calls.iter().map(|c| c.fields["outcome"].clone()).collect();
    assert_eq!(outcomes, ["miss", "hit"]);

    let gets = captured.named("redis", "db.operation.name", "GET");
    assert_eq!(gets.len(), 2, "one read per call");
    for get in &gets {
        assert_eq!(get.fields["db.system.name"], "redis");
        assert_eq!(get.fields["server.address"], "127.0.0.1");
        assert_eq!(get.fields["server.port"], port);
        assert_eq!(get.parent.as_deref(), Some("cache"));
    }
    let scripts = captured.named("redis", "db.operation.name", "EVALSHA");
    let names: Vec<_> = scripts
        .iter()
        .map(|s| s.fields.get("db.stored_procedure.name").cloned())
        .collect();
    assert_eq!(
        names,
        [
            Some("GetOrLock".to_owned()),
            Some("SetAndUnlock".to_owned())
        ],
        "the miss took the stampede lock, then stored and released it"
    );
}

#[rate_limited(key = "s-api:<user>", limit = 1, window = "1m", client = client)]
async fn api(client: &Client, user: &str) -> Result<(), RateLimited> {
    let _ = user;
    Ok(())
}

#[with_lock(key = "s-pay:<id>", ttl = "5s", client = client)]
async fn pay(client: &Client, id: u64) -> Result<(), LockError> {
    let _ = id;
    Ok(())
}

#[test]
fn rate_limit_and_lock_calls_have_spans_with_their_outcomes() {
    let captured = run(async {
        let client = common::client(common::Kind::Redis, "spans-other");
        assert!(api(&client, "alice").await.is_ok());
        assert!(api(&client, "alice").await.is_err());
        pay(&client, 1).await.unwrap();
    });
    let limits = captured.named("rate_limit", "limiter", "s-api:<user>");
    let outcomes: Vec<_> = limits.iter().map(|c| c.fields["outcome"].clone()).collect();
    assert_eq!(outcomes, ["allowed", "denied"]);
    let locks = captured.named("lock", "lock", "s-pay:<id>");
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].fields["outcome"], "acquired");
    // Recorded once the grant came back, as milliseconds.
    let waited = &locks[0].fields["wait_ms"];
    assert!(
        waited.parse::<f64>().is_ok_and(f64::is_finite),
        "wait_ms = {waited:?}"
    );
    let scripts = captured.named("redis", "db.operation.name", "EVALSHA");
    assert!(
        scripts
            .iter()
            .any(|s| s.parent.as_deref() == Some("rate_limit")),
        "{scripts:?}"
    );
    assert!(scripts.iter().any(|s| s.parent.as_deref() == Some("lock")));
}

#[test]
fn mem_backends_have_call_spans_but_no_round_trips() {
    let captured = run(async {
        let client = Client::new("mem://").unwrap();
        product(&client, 1).await;
    });
    assert_eq!(captured.named("cache", "cache", "s-product:<id>").len(), 1);
    assert!(captured.0.lock().unwrap().iter().all(|s| s.name != "redis"));
}
