//! The cache attributes' options checked together and against the function, into the
//! configuration the expansion trusts. The errors read top to bottom: the options, the key and
//! `skip`, then the `fn` token, the parameters and the return type.

use proc_macro2::Span;
use syn::{Ident, ReturnType};

use super::Kind;
use super::parse::{CodecMode, Options, StampedeMode};
use crate::common::codegen::{Krate, Target, idents_in};
use crate::common::duration::Millis;
use crate::common::errors::{Errors, did_you_mean};
use crate::common::function::Function;
use crate::common::key::Key;

pub struct Config {
    pub target: Target,
    pub action: Action,
    /// `tags = […]`: the templates of the entry's tags, checked like the key.
    pub tags: Vec<Key>,
}

/// What the attribute does with the cache entry.
pub enum Action {
    Cached {
        ttl: Ttl,
        stampede: Stampede,
        /// Where `cache_none` is set, if it is: `None` results are then cached too.
        cache_none: Option<Span>,
        /// `near = "…"`: values also live in process memory for at most this long.
        near: Option<Millis>,
        /// `timeout = "…"`.
        timeout: Option<Millis>,
        /// Where `stale_while_revalidate` is written, if it is: the body must then be able to
        /// run in the background.
        revalidate: Option<Span>,
    },
    Evict,
    Put {
        ttl: Ttl,
    },
}

/// How an entry is written: how long it lives (fresh, then stale), in which codec, for which
/// version of the type.
#[derive(Clone, Copy)]
pub struct Ttl {
    pub ttl: Millis,
    /// Thousandths of the TTL by which each entry's lifetime varies.
    pub jitter_permille: u32,
    /// `None`: the client's default codec.
    pub codec: Option<CodecMode>,
    pub stale_if_error: Option<Millis>,
    pub stale_while_revalidate: Option<Millis>,
    /// `None`: the fingerprint.
    pub version: Option<u32>,
}

/// How concurrent misses are kept from all running the function.
#[derive(Clone, Copy)]
pub enum Stampede {
    None,
    Lock { lock_ttl: Millis, lock_wait: Millis },
    Early { beta: f64 },
}

pub enum Validated {
    Valid(Config),
    /// Errors were reported. `stubs`: the target of the companion functions to declare next to
    /// them, when their signatures are known, so that calls of them add no errors.
    Invalid {
        stubs: Option<Target>,
    },
}

pub fn validate(
    kind: Kind,
    options: Options,
    function: &Function,
    errors: &mut Errors,
) -> Validated {
    if options.complete {
        check_required(kind, &options, errors);
    }
    let key = key_of(kind, &options, function, errors);
    let (placeholders_known, mut misspelled) = key.check_placeholders(function, errors);
    let tags: Vec<Key> = options
        .tags
        .iter()
        .map(|lit| {
            let tag = Key::explicit(lit, errors);
            if tag.valid {
                misspelled.extend(tag.check_placeholders(function, errors).1);
            }
            tag
        })
        .collect();
    if kind == Kind::Cached {
        misspelled.extend(check_skip(&options.skip, &key, function, errors));
    }
    function.require_async(
        kind.name(),
        "the cache is read and written asynchronously",
        errors,
    );
    if kind == Kind::Cached {
        check_every_param_is_keyed(&options, &key, &tags, function, &misspelled, errors);
    }
    check_return(kind, function, errors);
    check_near(&options, errors);

    let revalidate = options
        .stale_while_revalidate
        .and_then(|_| span_of(&options, "stale_while_revalidate"));
    let target = Target {
        krate: Krate::new(options.krate),
        client: options.client,
        key,
    };
    let stampede = match options.stampede {
        StampedeMode::None => Stampede::None,
        StampedeMode::Lock => Stampede::Lock {
            lock_ttl: options.lock_ttl.unwrap_or(Millis(10_000)),
            lock_wait: options.lock_wait.unwrap_or(Millis(3_000)),
        },
        StampedeMode::Early => Stampede::Early {
            beta: options.beta.unwrap_or(1.0),
        },
    };
    let ttl = options.ttl.map(|ttl| Ttl {
        ttl,
        jitter_permille: options.ttl_jitter.unwrap_or(0),
        codec: options.codec,
        stale_if_error: options.stale_if_error,
        stale_while_revalidate: options.stale_while_revalidate,
        version: options.version,
    });
    let action = match kind {
        Kind::Cached => ttl.map(|ttl| Action::Cached {
            ttl,
            stampede,
            cache_none: options.cache_none,
            near: options.near,
            timeout: options.timeout,
            revalidate,
        }),
        Kind::CacheEvict => Some(Action::Evict),
        Kind::CachePut => ttl.map(|ttl| Action::Put { ttl }),
    };
    match action {
        Some(action) if errors.is_empty() => Validated::Valid(Config {
            target,
            action,
            tags,
        }),
        _ => {
            let concrete_return = matches!(function.item.sig.output, ReturnType::Type(..))
                && function.impl_trait_return().is_none();
            let stubs =
                kind == Kind::Cached && target.key.valid && placeholders_known && concrete_return;
            Validated::Invalid {
                stubs: stubs.then_some(target),
            }
        }
    }
}

/// A near lifetime longer than the TTL could never be used: a near value lives at most as long
/// as its Redis entry.
fn check_near(options: &Options, errors: &mut Errors) {
    if let (Some(near), Some(ttl)) = (options.near, options.ttl)
        && near.0 > ttl.0
        && let Some((_, span)) = options.given.iter().find(|(name, _)| name == "near")
    {
        errors.push(syn::Error::new(
            *span,
            format!(
                "`near` ({} ms) is longer than `ttl` ({} ms): a value never lives in process \
                 memory longer than in Redis; use a `near` of at most the `ttl`, e.g. `near = \"30s\"`",
                near.0, ttl.0
            ),
        ));
    }
}

/// The options an attribute needs, and the ones that only tune another.
fn check_required(kind: Kind, options: &Options, errors: &mut Errors) {
    let given = |name: &str| options.given.iter().any(|(g, _)| g == name);
    // A `ttl` that was given but is invalid has its own error already.
    if kind != Kind::CacheEvict && !given("ttl") {
        errors.push(syn::Error::new(
            Span::call_site(),
            format!(
                "#[{}] needs a `ttl`, e.g. `ttl = \"5m\"` or `ttl = 300` (seconds): entries without \
                 a TTL grow Redis until it runs out of memory",
                kind.name()
            ),
        ));
    }
    if kind == Kind::CacheEvict && options.key.is_none() {
        errors.push(syn::Error::new(
            Span::call_site(),
            "#[cache_evict] needs the `key` of the entry to delete, e.g. `key = \"product:<id>\"`",
        ));
    }
    if kind == Kind::CachePut && options.key.is_none() {
        errors.push(syn::Error::new(
            Span::call_site(),
            "#[cache_put] needs the `key` to store under, e.g. `key = \"product:<id>\"`",
        ));
    }
    // A soft timeout: it bounds the function only when a stale value can be served instead.
    if given("timeout")
        && !given("stale_if_error")
        && let Some(span) = span_of(options, "timeout")
    {
        errors.push(syn::Error::new(
            span,
            "`timeout` bounds the function only when a stale value can be served instead; \
             add `stale_if_error = \"1h\"` (how long past the TTL entries are kept for that) \
             or remove `timeout`",
        ));
    }
    let tuned_mode = |option: &str| match option {
        "beta" => Some(("early", options.stampede == StampedeMode::Early)),
        "lock_ttl" | "lock_wait" => Some(("lock", options.stampede == StampedeMode::Lock)),
        _ => None,
    };
    for (name, span) in &options.given {
        if let Some((mode, false)) = tuned_mode(name) {
            errors.push(syn::Error::new(
                *span,
                format!(
                    "`{name}` tunes `stampede = \"{mode}\"`; add `stampede = \"{mode}\"` or \
                     remove `{name}`"
                ),
            ));
        }
    }
}

/// Where option `name` was written.
fn span_of(options: &Options, name: &str) -> Option<Span> {
    options
        .given
        .iter()
        .find(|(given, _)| given == name)
        .map(|(_, span)| *span)
}

fn key_of(kind: Kind, options: &Options, function: &Function, errors: &mut Errors) -> Key {
    if let Some(lit) = &options.key {
        return Key::explicit(lit, errors);
    }
    if kind != Kind::Cached {
        // #[cache_evict] and #[cache_put] require a key; its absence is already reported.
        return Key::missing();
    }
    // Default key: the function's path, then every parameter that is not skipped.
    let client_idents = idents_in(options.client.as_ref());
    let keyed: Vec<&Ident> = function
        .params
        .iter()
        .filter_map(|p| p.name.as_ref())
        .filter(|name| {
            !options.skip.iter().any(|s| s == *name) && !client_idents.contains(&name.to_string())
        })
        .collect();
    Key::default_for(&function.item, &keyed)
}

/// Reports `skip(...)` entries that name no parameter or one the key uses; returns the
/// parameters suggested for misspelled entries.
fn check_skip(skip: &[Ident], key: &Key, function: &Function, errors: &mut Errors) -> Vec<String> {
    let params = &function.params;
    let mut suggested = Vec::new();
    for skipped in skip {
        let name = skipped.to_string();
        if !params.iter().any(|p| p.name.as_ref() == Some(skipped)) {
            let suggestion = did_you_mean(&name, params.iter().filter_map(|p| p.name.as_ref()));
            suggested.extend(suggestion.clone());
            let hint = suggestion
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            errors.push(syn::Error::new_spanned(
                skipped,
                format!("`skip` names no parameter `{name}`{hint}"),
            ));
        } else if key.valid && key.explicit && key.uses(&name) {
            errors.push(syn::Error::new_spanned(
                skipped,
                format!("`{name}` is used in the key; remove it from `skip(...)`"),
            ));
        }
    }
    suggested
}

/// Reports parameters that are neither in the key, nor skipped, nor the client's.
/// `misspelled`: parameters already suggested for a misspelled placeholder or `skip` entry.
fn check_every_param_is_keyed(
    options: &Options,
    key: &Key,
    tags: &[Key],
    function: &Function,
    misspelled: &[String],
    errors: &mut Errors,
) {
    let client_idents = idents_in(options.client.as_ref());
    for p in &function.params {
        let Some(name) = &p.name else {
            errors.push(syn::Error::new_spanned(
                &p.pat,
                "parameters of a #[cached] function must be plain names (`id: u64`) so that the \
                 key can name them or `skip(...)` can leave them out",
            ));
            continue;
        };
        let text = name.to_string();
        // With an invalid template the key's placeholders are unknown.
        // A parameter a tag uses is accounted for: it says which tags the entry has, and is
        // expected to follow from the key's parameters (`brand` of product `id`).
        if key.valid
            && !key.uses(&text)
            && !tags.iter().any(|tag| tag.uses(&text))
            && !options.skip.iter().any(|s| s == name)
            && !client_idents.contains(&text)
            && !misspelled.contains(&text)
        {
            errors.push(syn::Error::new_spanned(
                name,
                format!(
                    "parameter `{text}` is not part of the cache key, so calls that differ only \
                     in `{text}` would share one cache entry; use it in the key (`<{text}>`) or \
                     list it in `skip({text})`"
                ),
            ));
        }
    }
}

/// A #[cached] function returns the value to cache; none returns `impl Trait`.
fn check_return(kind: Kind, function: &Function, errors: &mut Errors) {
    let why = match kind {
        Kind::Cached => "the cache rebuilds it with `serde::Deserialize`",
        Kind::CachePut => "the cache stores it with `serde::Serialize`",
        Kind::CacheEvict => "the attribute checks whether the call succeeded",
    };
    function.check_return(
        (kind == Kind::Cached).then_some(
            "a #[cached] function must return the value to cache: add a return type \
             (`-> T`, `-> Option<T>` or `-> Result<T, E>`)",
        ),
        &format!(
            "a #[{}] function must return a concrete type ({why}), not `impl Trait`",
            kind.name()
        ),
        errors,
    );
}
