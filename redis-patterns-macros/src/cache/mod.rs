//! `#[cached]`, `#[cache_evict]` and `#[cache_put]`: parse the options, validate them with the
//! function into a typed configuration, expand it.

mod companions;
mod expand;
mod parse;
mod validate;

use proc_macro2::TokenStream;

use self::validate::Validated;
use crate::common::errors::Errors;
use crate::common::function::Function;

/// Which attribute is being expanded; decides the accepted options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cached,
    CacheEvict,
    CachePut,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Cached => "cached",
            Kind::CacheEvict => "cache_evict",
            Kind::CachePut => "cache_put",
        }
    }

    fn options(self) -> &'static [&'static str] {
        match self {
            Kind::Cached => &[
                "key",
                "ttl",
                "ttl_jitter",
                "stampede",
                "codec",
                "near",
                "stale_if_error",
                "stale_while_revalidate",
                "timeout",
                "version",
                "tags",
                "beta",
                "lock_ttl",
                "lock_wait",
                "cache_none",
                "skip",
                "client",
                "crate",
            ],
            Kind::CacheEvict => &["key", "client", "crate"],
            Kind::CachePut => &[
                "key",
                "ttl",
                "ttl_jitter",
                "codec",
                "stale_if_error",
                "stale_while_revalidate",
                "version",
                "tags",
                "client",
                "crate",
            ],
        }
    }
}

pub fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let options = parse::parse(kind, args, &mut errors);
    let function = match Function::parse(item, kind.name()) {
        Ok(item) => Function::new(item),
        Err(tokens) => return tokens,
    };
    match validate::validate(kind, options, &function, &mut errors) {
        Validated::Valid(config) => expand::expand(&config, &function),
        Validated::Invalid { stubs } => {
            let mut out = errors.with_item(&function.item);
            if let Some(target) = stubs {
                out.extend(companions::stubs(&target, &function));
            }
            out
        }
    }
}
