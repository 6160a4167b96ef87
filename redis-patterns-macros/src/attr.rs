//! Attribute arguments: parsed into a typed view, every mistake collected with the span of
//! the token that caused it.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Meta, Token};

use crate::duration;
use crate::errors::Errors;

/// Which attribute is being parsed; decides the accepted options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cached,
    CacheEvict,
    CachePut,
}

impl Kind {
    pub fn name(self) -> &'static str {
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
                "beta",
                "lock_ttl",
                "lock_wait",
                "cache_none",
                "skip",
                "client",
                "crate",
            ],
            Kind::CacheEvict => &["key", "client", "crate"],
            Kind::CachePut => &["key", "ttl", "ttl_jitter", "client", "crate"],
        }
    }
}

pub enum StampedeMode {
    None,
    Lock,
    Early,
}

pub struct Args {
    pub key: Option<LitStr>,
    /// Durations are in milliseconds.
    pub ttl_ms: Option<u64>,
    pub ttl_jitter: Option<u32>,
    pub stampede: StampedeMode,
    pub beta: Option<f64>,
    pub lock_ttl_ms: Option<u64>,
    pub lock_wait_ms: Option<u64>,
    pub cache_none: Option<Span>,
    pub skip: Vec<Ident>,
    pub client: Option<Expr>,
    pub krate: Option<syn::Path>,
}

pub const STAMPEDE_MODES: &str = "`none`, `lock`, `early`";

/// Splits an attribute's arguments into `(name, meta)` pairs, reporting syntax errors, unknown
/// options (with a did-you-mean) and duplicates. Used by the attributes other than the cache
/// ones, which add their own messages.
pub fn options(
    tokens: TokenStream,
    attribute: &str,
    allowed: &[&str],
    errors: &mut Errors,
) -> Vec<(String, Meta)> {
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens) {
        Ok(metas) => metas,
        Err(e) => {
            errors.push(e);
            return Vec::new();
        }
    };
    let mut out: Vec<(String, Meta)> = Vec::new();
    for meta in metas {
        let name = option_name(meta.path());
        if !allowed.contains(&name.as_str()) {
            let hint = crate::errors::did_you_mean(&name, allowed.iter().copied())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_else(|| format!("; expected one of {}", list(allowed)));
            errors.push(syn::Error::new_spanned(
                meta.path(),
                format!("unknown option `{name}` for #[{attribute}]{hint}"),
            ));
        } else if out.iter().any(|(given, _)| *given == name) {
            errors.push(syn::Error::new_spanned(
                meta.path(),
                format!("`{name}` is given twice; keep one"),
            ));
        } else {
            out.push((name, meta));
        }
    }
    out
}

fn option_name(path: &syn::Path) -> String {
    path.get_ident()
        .map(ToString::to_string)
        .unwrap_or_else(|| path.to_token_stream().to_string())
}

pub fn parse(kind: Kind, tokens: TokenStream, errors: &mut Errors) -> Args {
    let mut args = Args {
        key: None,
        ttl_ms: None,
        ttl_jitter: None,
        stampede: StampedeMode::None,
        beta: None,
        lock_ttl_ms: None,
        lock_wait_ms: None,
        cache_none: None,
        skip: Vec::new(),
        client: None,
        krate: None,
    };
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens) {
        Ok(metas) => metas,
        Err(e) => {
            errors.push(e);
            return args;
        }
    };
    // Each option given, with where it was written: for duplicates, and for errors about
    // options that do not go together.
    let mut given: Vec<(String, Span)> = Vec::new();
    for meta in metas {
        let path = meta.path();
        let name = path
            .get_ident()
            .map(ToString::to_string)
            .or_else(|| {
                (path.is_ident("crate") || path.to_token_stream().to_string() == "crate")
                    .then(|| "crate".into())
            })
            .unwrap_or_else(|| path.to_token_stream().to_string());
        if !kind.options().contains(&name.as_str()) {
            let message = if Kind::Cached.options().contains(&name.as_str()) {
                format!(
                    "`{name}` is an option of #[cached] only; #[{}] accepts {}",
                    kind.name(),
                    list(kind.options())
                )
            } else {
                let hint = crate::errors::did_you_mean(&name, kind.options().iter().copied())
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_else(|| format!("; expected one of {}", list(kind.options())));
                format!("unknown option `{name}` for #[{}]{hint}", kind.name())
            };
            errors.push(syn::Error::new_spanned(path, message));
            continue;
        }
        if given.iter().any(|(g, _)| *g == name) {
            errors.push(syn::Error::new_spanned(
                path,
                format!("`{name}` is given twice; keep one"),
            ));
            continue;
        }
        given.push((name.clone(), path.span()));
        match name.as_str() {
            "key" => args.key = string(&meta, errors),
            "ttl" => args.ttl_ms = duration_value(&meta, errors, "ttl", false),
            "lock_ttl" => args.lock_ttl_ms = duration_value(&meta, errors, "lock_ttl", false),
            "lock_wait" => args.lock_wait_ms = duration_value(&meta, errors, "lock_wait", true),
            "ttl_jitter" => {
                if let Some(lit) = string(&meta, errors) {
                    match duration::parse_permille(&lit.value()) {
                        Ok(p) => args.ttl_jitter = Some(p),
                        Err(e) => errors.push(syn::Error::new(
                            lit.span(),
                            format!("invalid `ttl_jitter`: {e}"),
                        )),
                    }
                }
            }
            "stampede" => {
                if let Some(lit) = string(&meta, errors) {
                    match lit.value().as_str() {
                        "none" => args.stampede = StampedeMode::None,
                        "lock" => args.stampede = StampedeMode::Lock,
                        "early" => args.stampede = StampedeMode::Early,
                        other => {
                            let hint =
                                crate::errors::did_you_mean(other, ["none", "lock", "early"])
                                    .map(|s| format!(" (did you mean `{s}`?)"))
                                    .unwrap_or_default();
                            errors.push(syn::Error::new(
                                lit.span(),
                                format!("no stampede mode `{other}`{hint}; expected one of {STAMPEDE_MODES}"),
                            ));
                        }
                    }
                }
            }
            "beta" => args.beta = beta(&meta, errors),
            "cache_none" => match &meta {
                Meta::Path(p) => args.cache_none = Some(p.span()),
                Meta::NameValue(nv) => match &nv.value {
                    Expr::Lit(ExprLit {
                        lit: Lit::Bool(b), ..
                    }) => {
                        args.cache_none = b.value.then(|| b.span());
                    }
                    other => errors.push(syn::Error::new_spanned(
                        other,
                        "`cache_none` is a flag: write `cache_none` or `cache_none = true`",
                    )),
                },
                Meta::List(l) => errors.push(syn::Error::new_spanned(
                    l,
                    "`cache_none` is a flag: write `cache_none`",
                )),
            },
            "skip" => match &meta {
                Meta::List(list) => {
                    match list.parse_args_with(Punctuated::<Ident, Token![,]>::parse_terminated) {
                        Ok(idents) => args.skip.extend(idents),
                        Err(e) => errors.push(e),
                    }
                }
                other => errors.push(syn::Error::new_spanned(
                    other,
                    "write `skip(param, …)` with the parameters to leave out of the key",
                )),
            },
            "client" => args.client = client(meta, errors),
            "crate" => args.krate = crate_path(&meta, errors),
            _ => unreachable!("option list and match arms agree"),
        }
    }

    // A `ttl` that was given but is invalid has its own error already.
    if kind != Kind::CacheEvict && !given.iter().any(|(g, _)| g == "ttl") {
        errors.push(syn::Error::new(
            Span::call_site(),
            format!(
                "#[{}] needs a `ttl`, e.g. `ttl = \"5m\"` or `ttl = 300` (seconds): entries without \
                 a TTL grow Redis until it runs out of memory",
                kind.name()
            ),
        ));
    }
    if kind == Kind::CacheEvict && args.key.is_none() {
        errors.push(syn::Error::new(
            Span::call_site(),
            "#[cache_evict] needs the `key` of the entry to delete, e.g. `key = \"product:<id>\"`",
        ));
    }
    if kind == Kind::CachePut && args.key.is_none() {
        errors.push(syn::Error::new(
            Span::call_site(),
            "#[cache_put] needs the `key` to store under, e.g. `key = \"product:<id>\"`",
        ));
    }
    let tuned_mode = |option: &str| match option {
        "beta" => Some(("early", matches!(args.stampede, StampedeMode::Early))),
        "lock_ttl" | "lock_wait" => Some(("lock", matches!(args.stampede, StampedeMode::Lock))),
        _ => None,
    };
    for (name, span) in &given {
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
    args
}

/// `client = <expression>`.
pub fn client(meta: Meta, errors: &mut Errors) -> Option<Expr> {
    match meta {
        Meta::NameValue(nv) => Some(nv.value),
        other => {
            errors.push(syn::Error::new_spanned(
                other,
                "write `client = <expression>` giving a `redis_patterns::Client` (or a reference to one)",
            ));
            None
        }
    }
}

/// `crate = "path"`.
pub fn crate_path(meta: &Meta, errors: &mut Errors) -> Option<syn::Path> {
    let lit = string(meta, errors)?;
    match lit.parse::<syn::Path>() {
        Ok(path) => Some(path),
        Err(_) => {
            errors.push(syn::Error::new(
                lit.span(),
                "`crate` takes a path such as `\"::my_reexport::redis_patterns\"`",
            ));
            None
        }
    }
}

pub fn list(options: &[&str]) -> String {
    options
        .iter()
        .map(|o| format!("`{o}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn value<'m>(meta: &'m Meta, errors: &mut Errors) -> Option<&'m Expr> {
    match meta {
        Meta::NameValue(nv) => Some(&nv.value),
        other => {
            let name = other.path().to_token_stream().to_string();
            errors.push(syn::Error::new_spanned(
                other,
                format!("write `{name} = …`"),
            ));
            None
        }
    }
}

pub fn string(meta: &Meta, errors: &mut Errors) -> Option<LitStr> {
    match value(meta, errors)? {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.clone()),
        other => {
            let name = meta.path().to_token_stream().to_string();
            let example = match name.as_str() {
                "key" => "\"product:<id>\"",
                "ttl_jitter" => "\"10%\"",
                "stampede" => "\"lock\"",
                _ => "\"::redis_patterns\"",
            };
            errors.push(syn::Error::new_spanned(
                other,
                format!("`{name}` takes a string literal, e.g. `{name} = {example}`"),
            ));
            None
        }
    }
}

pub fn duration_value(meta: &Meta, errors: &mut Errors, name: &str, zero_ok: bool) -> Option<u64> {
    let expr = value(meta, errors)?;
    let span = expr.span();
    let parsed = match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i
            .base10_parse::<u64>()
            .map_err(|e| e.to_string())
            .and_then(|s| s.checked_mul(1000).ok_or_else(|| "too large".to_owned())),
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => {
            let text = s.value();
            if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                Err(format!(
                    "`\"{text}\"` has no unit; write `{name} = {text}` for seconds, or a \
                     duration string such as `\"{text}s\"`"
                ))
            } else {
                duration::parse_millis(&text)
            }
        }
        _ => {
            errors.push(syn::Error::new(
                span,
                format!(
                    "`{name}` takes whole seconds (`300`) or a duration string (`\"5m\"`, \
                     `\"1500ms\"`)"
                ),
            ));
            return None;
        }
    };
    match parsed {
        Ok(0) if !zero_ok => {
            let example = if name == "ttl" { "5m" } else { "10s" };
            errors.push(syn::Error::new(
                span,
                format!("`{name}` must be greater than zero, e.g. `{name} = \"{example}\"`"),
            ));
            None
        }
        Ok(ms) => Some(ms),
        Err(e) => {
            errors.push(syn::Error::new(span, format!("invalid `{name}`: {e}")));
            None
        }
    }
}

fn beta(meta: &Meta, errors: &mut Errors) -> Option<f64> {
    let expr = value(meta, errors)?;
    let parsed = match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) => f.base10_parse::<f64>().ok(),
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<f64>().ok(),
        _ => None,
    };
    match parsed {
        Some(b) if b > 0.0 && b.is_finite() => Some(b),
        _ => {
            errors.push(syn::Error::new_spanned(
                expr,
                "`beta` must be a positive number such as `1.0` (larger recomputes earlier)",
            ));
            None
        }
    }
}
