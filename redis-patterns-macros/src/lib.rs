//! Procedural macros of [redis-patterns](https://docs.rs/redis-patterns). Use them through
//! the `redis_patterns` crate, which re-exports them and documents every option.

mod attr;
mod duration;
mod errors;
mod expand;
mod rate_limited;
mod template;
mod with_lock;

use proc_macro::TokenStream;

/// Caches the function's result. See `redis_patterns::cached`.
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(attr::Kind::Cached, args.into(), item.into()).into()
}

/// Deletes a cache entry after the function succeeds. See `redis_patterns::cache_evict`.
#[proc_macro_attribute]
pub fn cache_evict(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(attr::Kind::CacheEvict, args.into(), item.into()).into()
}

/// Stores the function's result as a cache entry. See `redis_patterns::cache_put`.
#[proc_macro_attribute]
pub fn cache_put(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(attr::Kind::CachePut, args.into(), item.into()).into()
}

/// Runs the function while holding a distributed lock. See `redis_patterns::with_lock`.
#[proc_macro_attribute]
pub fn with_lock(args: TokenStream, item: TokenStream) -> TokenStream {
    with_lock::expand(args.into(), item.into()).into()
}

/// Admits a call only within a rate limit. See `redis_patterns::rate_limited`.
#[proc_macro_attribute]
pub fn rate_limited(args: TokenStream, item: TokenStream) -> TokenStream {
    rate_limited::expand(args.into(), item.into()).into()
}
