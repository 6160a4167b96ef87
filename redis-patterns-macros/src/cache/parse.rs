//! The cache attributes' options, each read as what it takes and reported at its token.

use proc_macro2::Span;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Ident, LitStr, Meta, Token};

use super::Kind;
use crate::common::duration::{self, Millis};
use crate::common::errors::Errors;
use crate::common::literal;
use crate::common::mode::{self, Mode};
use crate::common::options::Options as Read;

/// How `#[cached]` keeps concurrent misses from all running the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampedeMode {
    None,
    Lock,
    Early,
}

impl Mode for StampedeMode {
    const WHAT: &'static str = "stampede mode";
    const VALUES: &'static [(&'static str, Self)] = &[
        ("none", StampedeMode::None),
        ("lock", StampedeMode::Lock),
        ("early", StampedeMode::Early),
    ];
    const EXAMPLE: &'static str = "lock";
}

/// How values are encoded: `codec = "…"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecMode {
    Json,
    MessagePack,
    Postcard,
}

impl Mode for CodecMode {
    const WHAT: &'static str = "codec";
    const VALUES: &'static [(&'static str, Self)] = &[
        ("json", CodecMode::Json),
        ("msgpack", CodecMode::MessagePack),
        ("postcard", CodecMode::Postcard),
    ];
    const EXAMPLE: &'static str = "msgpack";
}

/// The options as given; `None` (or empty) where an option is absent or its value was
/// reported.
pub struct Options {
    pub key: Option<LitStr>,
    pub ttl: Option<Millis>,
    /// Thousandths of the TTL.
    pub ttl_jitter: Option<u32>,
    pub stampede: StampedeMode,
    pub codec: Option<CodecMode>,
    /// `near = "30s"`: the near tier's lifetime of a value.
    pub near: Option<Millis>,
    pub beta: Option<f64>,
    /// `stale_if_error = "1h"`.
    pub stale_if_error: Option<Millis>,
    /// `stale_while_revalidate = "30s"`.
    pub stale_while_revalidate: Option<Millis>,
    /// `timeout = "200ms"`: the function's bound when a stale value can be served instead.
    pub timeout: Option<Millis>,
    /// `version = N`.
    pub version: Option<u32>,
    /// `tags = ["catalog", "brand:<brand>"]`: the templates of the entry's tags.
    pub tags: Vec<LitStr>,
    pub lock_ttl: Option<Millis>,
    pub lock_wait: Option<Millis>,
    /// Where `cache_none` is set, if it is.
    pub cache_none: Option<Span>,
    pub skip: Vec<Ident>,
    pub client: Option<Expr>,
    pub krate: Option<syn::Path>,
    /// Each option given, with where it was written: for the checks of options that need
    /// another.
    pub given: Vec<(String, Span)>,
    /// False after a syntax error: no option is then reported missing.
    pub complete: bool,
}

pub fn parse(kind: Kind, tokens: proc_macro2::TokenStream, errors: &mut Errors) -> Options {
    let mut options = Options {
        key: None,
        ttl: None,
        ttl_jitter: None,
        stampede: StampedeMode::None,
        codec: None,
        near: None,
        beta: None,
        stale_if_error: None,
        stale_while_revalidate: None,
        timeout: None,
        version: None,
        tags: Vec::new(),
        lock_ttl: None,
        lock_wait: None,
        cache_none: None,
        skip: Vec::new(),
        client: None,
        krate: None,
        given: Vec::new(),
        complete: true,
    };
    let mut read = Read::parse(tokens, kind.name(), kind.options(), errors)
        .belonging_to("cached", Kind::Cached.options());
    options.complete = read.complete;
    // Each value is read as its option is, so that the errors follow the attribute's order.
    while let Some((name, meta)) = read.next(errors) {
        options.given.push((name.clone(), meta.path().span()));
        match name.as_str() {
            "key" => options.key = literal::string(&meta, errors, "\"product:<id>\""),
            "ttl" => options.ttl = literal::duration(&meta, errors, false),
            "lock_ttl" => options.lock_ttl = literal::duration(&meta, errors, false),
            "lock_wait" => options.lock_wait = literal::duration(&meta, errors, true),
            "ttl_jitter" => options.ttl_jitter = jitter(&meta, errors),
            "stampede" => {
                if let Some(mode) = mode::parse(&meta, errors) {
                    options.stampede = mode;
                }
            }
            "codec" => options.codec = mode::parse(&meta, errors),
            "near" => options.near = literal::duration(&meta, errors, false),
            "stale_if_error" => options.stale_if_error = literal::duration(&meta, errors, false),
            "stale_while_revalidate" => {
                options.stale_while_revalidate = literal::duration(&meta, errors, false)
            }
            "timeout" => options.timeout = literal::duration(&meta, errors, false),
            "version" => options.version = version(&meta, errors),
            "tags" => options.tags = tags(&meta, errors),
            "beta" => {
                options.beta = literal::positive_number(
                    &meta,
                    errors,
                    "`beta` must be a positive number such as `1.0` (larger recomputes earlier)",
                )
            }
            "cache_none" => options.cache_none = literal::flag(&meta, errors),
            "skip" => skip(&meta, &mut options.skip, errors),
            "client" => options.client = literal::client(&meta, errors),
            "crate" => options.krate = literal::crate_path(&meta, errors),
            _ => unreachable!("option list and match arms agree"),
        }
    }
    options
}

/// `ttl_jitter = "10%"`, in thousandths.
fn jitter(meta: &Meta, errors: &mut Errors) -> Option<u32> {
    let lit = literal::string(meta, errors, "\"10%\"")?;
    duration::parse_permille(&lit.value())
        .map_err(|e| {
            errors.push(syn::Error::new(
                lit.span(),
                format!("invalid `ttl_jitter`: {e}"),
            ))
        })
        .ok()
}

/// `version = 3`: a whole number below 2³¹ (larger ones are reserved for fingerprints).
fn version(meta: &Meta, errors: &mut Errors) -> Option<u32> {
    let expr = literal::count(meta, errors, true, true)?;
    let syn::Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Int(n),
        ..
    }) = &expr
    else {
        return None;
    };
    match n.base10_parse::<u32>() {
        Ok(v) if v < 1 << 31 => Some(v),
        _ => {
            errors.push(syn::Error::new_spanned(
                n,
                "`version` must be below 2147483648 (2^31); count versions up from 1",
            ));
            None
        }
    }
}

/// `tags = ["catalog", "brand:<brand>"]`: string literals, each a template like `key`'s.
fn tags(meta: &Meta, errors: &mut Errors) -> Vec<LitStr> {
    let example = "write `tags = [\"catalog\", \"brand:<brand>\"]`: a list of tag templates";
    let Some(value) = literal::value(meta, errors) else {
        return Vec::new();
    };
    let Expr::Array(array) = value else {
        errors.push(syn::Error::new_spanned(value, example));
        return Vec::new();
    };
    let mut tags = Vec::new();
    for element in &array.elems {
        match element {
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(lit),
                ..
            }) => tags.push(lit.clone()),
            other => errors.push(syn::Error::new_spanned(other, example)),
        }
    }
    if tags.is_empty() && array.elems.is_empty() {
        errors.push(syn::Error::new_spanned(
            array,
            "`tags` is empty: name at least one tag, or remove the option",
        ));
    }
    tags
}

/// `skip(param, …)`.
fn skip(meta: &Meta, skip: &mut Vec<Ident>, errors: &mut Errors) {
    match meta {
        Meta::List(list) => {
            match list.parse_args_with(Punctuated::<Ident, Token![,]>::parse_terminated) {
                Ok(idents) => skip.extend(idents),
                Err(e) => errors.push(e),
            }
        }
        other => errors.push(syn::Error::new_spanned(
            other,
            "write `skip(param, …)` with the parameters to leave out of the key",
        )),
    }
}
