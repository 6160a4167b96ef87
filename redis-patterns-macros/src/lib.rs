//! Procedural macros of [redis-patterns](https://docs.rs/redis-patterns). Use them through
//! the `redis_patterns` crate, which re-exports them and documents every option.
//!
//! Each attribute family (`cache`, `counter`, `lock`, `rate_limit`, `stream`) parses its options, validates them
//! with the function into a typed configuration, and expands that; `common` holds what they
//! share.

mod cache;
mod common;
mod counter;
mod lock;
mod rate_limit;
mod stream;

use proc_macro::TokenStream;

/// Caches the function's result. See `redis_patterns::cached`.
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    cache::expand(cache::Kind::Cached, args.into(), item.into()).into()
}

/// Deletes a cache entry after the function succeeds. See `redis_patterns::cache_evict`.
#[proc_macro_attribute]
pub fn cache_evict(args: TokenStream, item: TokenStream) -> TokenStream {
    cache::expand(cache::Kind::CacheEvict, args.into(), item.into()).into()
}

/// Stores the function's result as a cache entry. See `redis_patterns::cache_put`.
#[proc_macro_attribute]
pub fn cache_put(args: TokenStream, item: TokenStream) -> TokenStream {
    cache::expand(cache::Kind::CachePut, args.into(), item.into()).into()
}

/// Runs the function while holding a distributed lock. See `redis_patterns::with_lock`.
#[proc_macro_attribute]
pub fn with_lock(args: TokenStream, item: TokenStream) -> TokenStream {
    lock::expand(args.into(), item.into()).into()
}

/// Admits a call only within a rate limit. See `redis_patterns::rate_limited`.
#[proc_macro_attribute]
pub fn rate_limited(args: TokenStream, item: TokenStream) -> TokenStream {
    rate_limit::expand(args.into(), item.into()).into()
}

/// Counts the function's calls in a windowed counter. See `redis_patterns::counted`.
#[proc_macro_attribute]
pub fn counted(args: TokenStream, item: TokenStream) -> TokenStream {
    counter::expand(args.into(), item.into()).into()
}

/// Turns a handler of a stream's events into a consumer of a group. See
/// `redis_patterns::stream_consumer`.
#[proc_macro_attribute]
pub fn stream_consumer(args: TokenStream, item: TokenStream) -> TokenStream {
    stream::expand(stream::Kind::StreamConsumer, args.into(), item.into()).into()
}

/// Turns a handler of a queue's jobs into a worker. See `redis_patterns::job`.
#[proc_macro_attribute]
pub fn job(args: TokenStream, item: TokenStream) -> TokenStream {
    stream::expand(stream::Kind::Job, args.into(), item.into()).into()
}
