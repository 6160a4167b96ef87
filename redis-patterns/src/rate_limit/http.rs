//! HTTP rate limiting as a tower [`Layer`], usable in axum, hyper and tonic (feature `tower`).
//!
//! Each request is mapped to a limiter and a key; a denied request is answered
//! `429 Too Many Requests` with `Retry-After` without reaching the service. Every limited
//! response carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds
//! until the limit is full again, as the IETF draft defines it), and for older clients
//! `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` — the last one, as
//! those clients (GitHub's convention) expect, the Unix time in seconds of that reset.
//!
//! ```
//! use std::time::Duration;
//! use http::{HeaderName, Request, Response, StatusCode};
//! use redis_patterns::rate_limit::RateLimiter;
//! use redis_patterns::rate_limit::http::{KeyExtractor, Layer, RateLimitLayer, Service};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = redis_patterns::Client::new("mem://")?;
//! let limiter = RateLimiter::sliding_window(1, Duration::from_secs(60)).client(client);
//! let layer = RateLimitLayer::by_key(limiter, KeyExtractor::header(HeaderName::from_static("x-api-key")));
//!
//! // Any tower service of `http` types; here a function that always answers 200.
//! let mut service = layer.layer(ServiceFn);
//! let request = || Request::builder().header("x-api-key", "k1").body(()).unwrap();
//! let ok = service.call(request()).await?;
//! assert_eq!(ok.status(), StatusCode::OK);
//! assert_eq!(ok.headers()["ratelimit-remaining"], "0");
//! let denied = service.call(request()).await?;
//! assert_eq!(denied.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert!(denied.headers().contains_key("retry-after"));
//! # Ok(()) }
//! # #[derive(Clone)] struct ServiceFn;
//! # impl Service<Request<()>> for ServiceFn {
//! #     type Response = Response<String>;
//! #     type Error = std::convert::Infallible;
//! #     type Future = std::future::Ready<Result<Response<String>, std::convert::Infallible>>;
//! #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> { std::task::Poll::Ready(Ok(())) }
//! #     fn call(&mut self, _: Request<()>) -> Self::Future { std::future::ready(Ok(Response::new(String::new()))) }
//! # }
//! ```
//!
//! In axum, choose the limit per request with a closure; see `examples/axum_rate_limit.rs`
//! (100 per minute for signed-in users, 20 per minute per IP for anonymous ones).

use std::fmt::Write as _;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use http::{Extensions, Request, Response, StatusCode};
pub use tower_layer::Layer;
pub use tower_service::Service;

use super::{Decision, DenyReason, RateLimited, RateLimiter};

/// Which limit applies to a request, and under which key: `None` lets the request through
/// unlimited. Implemented by [`ByKey`] and by closures
/// `Fn(&Request<B>) -> Option<(RateLimiter, String)>`.
pub trait SelectLimit<B>: Send + Sync + 'static {
    /// The limiter and the key (as for [`RateLimiter::check`]) of `request`.
    fn select(&self, request: &Request<B>) -> Option<(RateLimiter, String)>;
}

impl<B, F> SelectLimit<B> for F
where
    F: Fn(&Request<B>) -> Option<(RateLimiter, String)> + Send + Sync + 'static,
{
    fn select(&self, request: &Request<B>) -> Option<(RateLimiter, String)> {
        self(request)
    }
}

/// Where a request's key comes from. Use it with [`RateLimitLayer::by_key`], or call
/// [`extract`](Self::extract) inside your own selector.
#[derive(Debug, Clone)]
pub struct KeyExtractor(Extract);

#[derive(Debug, Clone)]
enum Extract {
    Header(HeaderName),
    ClientIp(fn(&Extensions) -> Option<IpAddr>),
}

impl KeyExtractor {
    /// The value of a request header, such as an API key or a user id set by an
    /// authentication layer in front of this one.
    ///
    /// ```
    /// use http::{HeaderName, Request};
    /// use redis_patterns::rate_limit::http::KeyExtractor;
    ///
    /// let by_user = KeyExtractor::header(HeaderName::from_static("x-user-id"));
    /// let request = Request::builder().header("x-user-id", "alice").body(()).unwrap();
    /// assert_eq!(by_user.extract(&request).as_deref(), Some("x-user-id:alice"));
    /// ```
    ///
    /// A value is taken as its text; a `%` in it is written `%25`, and each byte that is not
    /// UTF-8 text `%XX`, so that different header bytes always give different keys.
    ///
    /// ```
    /// # use http::{HeaderName, HeaderValue, Request};
    /// # use redis_patterns::rate_limit::http::KeyExtractor;
    /// # let by_user = KeyExtractor::header(HeaderName::from_static("x-user-id"));
    /// let value = HeaderValue::from_bytes(b"50%-\xff").unwrap();
    /// let request = Request::builder().header("x-user-id", value).body(()).unwrap();
    /// assert_eq!(by_user.extract(&request).as_deref(), Some("x-user-id:50%25-%FF"));
    /// ```
    pub fn header(name: HeaderName) -> Self {
        KeyExtractor(Extract::Header(name))
    }

    /// The client's IP address from the request extensions: a [`SocketAddr`] or an
    /// [`IpAddr`] your server put there. (In axum, use [`client_ip_from`](Self::client_ip_from)
    /// with `ConnectInfo<SocketAddr>`.) Behind a proxy, put the real client address there
    /// first; this extractor never trusts `X-Forwarded-For`.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use http::Request;
    /// use redis_patterns::rate_limit::http::KeyExtractor;
    ///
    /// let mut request = Request::new(());
    /// request.extensions_mut().insert("10.0.0.7:4711".parse::<SocketAddr>().unwrap());
    /// assert_eq!(KeyExtractor::client_ip().extract(&request).as_deref(), Some("ip:10.0.0.7"));
    /// ```
    pub fn client_ip() -> Self {
        KeyExtractor(Extract::ClientIp(|ext| {
            ext.get::<SocketAddr>()
                .map(SocketAddr::ip)
                .or_else(|| ext.get::<IpAddr>().copied())
        }))
    }

    /// The client's IP address from an extension that dereferences to a [`SocketAddr`], such
    /// as axum's `ConnectInfo<SocketAddr>`:
    /// `KeyExtractor::client_ip_from::<ConnectInfo<SocketAddr>>()`.
    pub fn client_ip_from<T>() -> Self
    where
        T: Deref<Target = SocketAddr> + Send + Sync + 'static,
    {
        KeyExtractor(Extract::ClientIp(|ext| {
            ext.get::<T>().map(|addr| addr.ip())
        }))
    }

    /// The key of `request`, prefixed with what it is (`"ip:…"`, `"<header name>:…"`), or
    /// `None` when the request has no such header or address.
    pub fn extract<B>(&self, request: &Request<B>) -> Option<String> {
        match &self.0 {
            Extract::Header(name) => {
                let value = request.headers().get(name)?;
                let mut key = format!("{}:", name.as_str());
                push_lossless(&mut key, value.as_bytes());
                Some(key)
            }
            Extract::ClientIp(get) => get(request.extensions()).map(|ip| format!("ip:{ip}")),
        }
    }
}

/// Appends `bytes` as text that tells every byte sequence apart: UTF-8 as it is but with `%`
/// written `%25`, and every other byte `%XX` (which valid text never produces, as its `%` are
/// all followed by `25`). A lossy decoding would make all invalid bytes one U+FFFD, so that
/// clients sending `\xff` and `\xfe` shared one limit.
fn push_lossless(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        for (i, part) in chunk.valid().split('%').enumerate() {
            if i > 0 {
                out.push_str("%25");
            }
            out.push_str(part);
        }
        for b in chunk.invalid() {
            // `fmt::Write` into a `String` cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// One limiter for every request, keyed by a [`KeyExtractor`]. Requests it finds no key for
/// share one limit (key `"~"`), so a missing header or address never means "unlimited".
#[derive(Debug, Clone)]
pub struct ByKey {
    limiter: RateLimiter,
    extractor: KeyExtractor,
}

impl<B> SelectLimit<B> for ByKey {
    fn select(&self, request: &Request<B>) -> Option<(RateLimiter, String)> {
        let key = self
            .extractor
            .extract(request)
            .unwrap_or_else(|| "~".to_owned());
        Some((self.limiter.clone(), key))
    }
}

/// A tower [`Layer`] that rate limits requests; see the [module documentation](self).
///
/// A denial is answered `429 Too Many Requests` (or `503 Service Unavailable` when the backend
/// failed and the limiter's policy is [`OnError::Deny`](crate::rate_limit::OnError::Deny)) with
/// `Retry-After` in whole seconds, rounded up. A request admitted because the backend failed
/// under [`OnError::Allow`](crate::rate_limit::OnError::Allow) gets no rate limit headers.
#[derive(Debug)]
pub struct RateLimitLayer<P> {
    select: Arc<P>,
}

impl<P> Clone for RateLimitLayer<P> {
    fn clone(&self) -> Self {
        RateLimitLayer {
            select: Arc::clone(&self.select),
        }
    }
}

impl<P> RateLimitLayer<P> {
    /// A layer that asks `select` which limit applies to each request (see [`SelectLimit`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::{HeaderName, Request};
    /// use redis_patterns::rate_limit::RateLimiter;
    /// use redis_patterns::rate_limit::http::{KeyExtractor, RateLimitLayer};
    ///
    /// let signed_in = RateLimiter::sliding_window(100, Duration::from_secs(60));
    /// let anonymous = RateLimiter::sliding_window(20, Duration::from_secs(60));
    /// let user = KeyExtractor::header(HeaderName::from_static("x-user-id"));
    /// let ip = KeyExtractor::client_ip();
    /// let layer = RateLimitLayer::new(move |request: &Request<String>| match user.extract(request) {
    ///     Some(key) => Some((signed_in.clone(), key)),
    ///     None => Some((anonymous.clone(), ip.extract(request).unwrap_or_else(|| "~".into()))),
    /// });
    /// ```
    pub fn new(select: P) -> Self {
        RateLimitLayer {
            select: Arc::new(select),
        }
    }
}

impl RateLimitLayer<ByKey> {
    /// A layer that limits every request with `limiter`, keyed by `extractor`.
    pub fn by_key(limiter: RateLimiter, extractor: KeyExtractor) -> Self {
        RateLimitLayer::new(ByKey { limiter, extractor })
    }
}

impl<S, P> Layer<S> for RateLimitLayer<P> {
    type Service = RateLimitService<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            select: Arc::clone(&self.select),
        }
    }
}

/// The service [`RateLimitLayer`] wraps around yours.
#[derive(Debug)]
pub struct RateLimitService<S, P> {
    inner: S,
    select: Arc<P>,
}

impl<S: Clone, P> Clone for RateLimitService<S, P> {
    fn clone(&self) -> Self {
        RateLimitService {
            inner: self.inner.clone(),
            select: Arc::clone(&self.select),
        }
    }
}

impl<S, P, B, ResBody> Service<Request<B>> for RateLimitService<S, P>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    P: SelectLimit<B>,
    B: Send + 'static,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let selected = self.select.select(&request);
        // The clone is not the instance `poll_ready` was called on: keep that one for this
        // request, as tower requires.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let Some((limiter, key)) = selected else {
                return inner.call(request).await;
            };
            match limiter.admit(&key, 1).await {
                Ok(decision) => {
                    let mut response = inner.call(request).await?;
                    if let Some(decision) = decision {
                        set_headers(response.headers_mut(), &decision);
                    }
                    Ok(response)
                }
                Err(denied) => Ok(denial(&denied)),
            }
        })
    }
}

/// Whole seconds, rounded up: a client that waits this long is past the instant.
fn seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn set_headers(headers: &mut HeaderMap, d: &Decision) {
    limit_headers(headers, d.limit, d.remaining, d.reset_after);
}

fn limit_headers(headers: &mut HeaderMap, limit: u64, remaining: u64, reset_after: Duration) {
    let reset_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|now| seconds(now + reset_after))
        .unwrap_or(0);
    for (name, value) in [
        ("ratelimit-limit", limit),
        ("x-ratelimit-limit", limit),
        ("ratelimit-remaining", remaining),
        ("x-ratelimit-remaining", remaining),
        ("ratelimit-reset", seconds(reset_after)),
        ("x-ratelimit-reset", reset_at),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}

fn denial<ResBody: From<String>>(denied: &RateLimited) -> Response<ResBody> {
    let retry = seconds(denied.retry_after).max(1);
    let (status, text) = match denied.reason {
        DenyReason::LimitExceeded => (
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too Many Requests: retry in {retry} s\n"),
        ),
        DenyReason::BackendUnavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Service Unavailable: the rate limit cannot be checked; retry in {retry} s\n"),
        ),
    };
    let mut response = Response::new(ResBody::from(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(RETRY_AFTER, HeaderValue::from(retry));
    if denied.reason == DenyReason::LimitExceeded {
        limit_headers(headers, denied.limit, denied.remaining, denied.reset_after);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_up() {
        assert_eq!(seconds(Duration::ZERO), 0);
        assert_eq!(seconds(Duration::from_millis(1)), 1);
        assert_eq!(seconds(Duration::from_secs(2)), 2);
        assert_eq!(seconds(Duration::from_millis(2001)), 3);
    }

    #[test]
    fn header_keys_name_their_header() {
        let extractor = KeyExtractor::header(HeaderName::from_static("x-api-key"));
        let request = Request::builder()
            .header("x-api-key", "a:b{c}")
            .body(())
            .unwrap();
        assert_eq!(
            extractor.extract(&request).as_deref(),
            Some("x-api-key:a:b{c}")
        );
        assert_eq!(extractor.extract(&Request::new(())), None);
    }

    fn header_key(value: &[u8]) -> String {
        let extractor = KeyExtractor::header(HeaderName::from_static("x-api-key"));
        let value = HeaderValue::from_bytes(value).unwrap();
        let request = Request::builder()
            .header("x-api-key", value)
            .body(())
            .unwrap();
        extractor.extract(&request).unwrap()
    }

    #[test]
    fn header_values_that_differ_in_any_byte_give_different_keys() {
        let values: &[&[u8]] = &[
            b"key-\xff",
            b"key-\xfe",
            b"key-\xef\xbf\xbd", // U+FFFD itself, what a lossy decoding made of both
            b"key-%FF",
            b"key-%25FF",
            b"key-%",
            b"key-",
            b"key-\xc3",
            b"key-\xc3\xa9",
            b"key-%C3%A9",
        ];
        let keys: std::collections::HashSet<String> =
            values.iter().map(|v| header_key(v)).collect();
        assert_eq!(keys.len(), values.len(), "{keys:?}");
        assert_eq!(
            header_key(b"alice"),
            "x-api-key:alice",
            "text stays readable"
        );
    }
}
