//! `#[rate_limited]`: checks one or more limits before the body runs and returns
//! `Err(RateLimited.into())` when one denies.
//!
//! Stacked attributes are expanded together: the outermost one takes the others out of the
//! function's attributes and generates one combined check, so that a call denied by one limit
//! consumes nothing from the others (see `redis_patterns::__private::rate_limited`).

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, ItemFn, Lit, LitStr, Meta, ReturnType, Type};

use crate::attr;
use crate::errors::{Errors, did_you_mean};
use crate::expand::{
    Key, body_tokens, check_placeholders, client_tokens, explicit_key, key_tokens, name_tokens,
    params_of, parse_fn, ret_span, ret_tokens,
};

const OPTIONS: &[&str] = &[
    "key",
    "limit",
    "window",
    "algorithm",
    "burst",
    "cost",
    "on_error",
    "client",
    "crate",
];

/// Attribute names and the runtime's `Algorithm` variants.
const ALGORITHMS: &[(&str, &str)] = &[
    ("sliding_window", "SlidingWindow"),
    ("fixed_window", "FixedWindow"),
    ("sliding_window_counter", "SlidingWindowCounter"),
    ("token_bucket", "TokenBucket"),
    ("gcra", "Gcra"),
];

fn has_burst(algorithm: &str) -> bool {
    matches!(algorithm, "token_bucket" | "gcra")
}

/// One `#[rate_limited(...)]`.
struct Limit {
    key: Key,
    limit: Option<Expr>,
    window_ms: Option<u64>,
    /// Index into [`ALGORITHMS`].
    algorithm: usize,
    burst: Option<u64>,
    cost: Option<Expr>,
    deny_on_error: bool,
    client: Option<Expr>,
    krate: Option<syn::Path>,
}

fn is_rate_limited(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "rate_limited")
}

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let mut func = match parse_fn(item, "rate_limited") {
        Ok(f) => f,
        Err(tokens) => return tokens,
    };
    // This attribute and the `#[rate_limited]` ones below it, top to bottom.
    let mut stacked = vec![(args, Span::call_site())];
    let mut kept = Vec::with_capacity(func.attrs.len());
    for attribute in std::mem::take(&mut func.attrs) {
        if !is_rate_limited(&attribute) {
            kept.push(attribute);
            continue;
        }
        let span = attribute.path().span();
        match attribute.meta {
            Meta::List(list) => stacked.push((list.tokens, span)),
            Meta::Path(_) => stacked.push((TokenStream::new(), span)),
            Meta::NameValue(nv) => errors.push(syn::Error::new_spanned(
                nv,
                "write `#[rate_limited(limit = …, window = …)]`",
            )),
        }
    }
    func.attrs = kept;

    let (has_self, params) = params_of(&func);
    let limits: Vec<Limit> = stacked
        .into_iter()
        .map(|(tokens, span)| {
            let limit = parse(tokens, span, &func, &mut errors);
            check_placeholders(&limit.key, &params, has_self, &mut errors);
            limit
        })
        .collect();

    if func.sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            func.sig.fn_token,
            "#[rate_limited] requires an `async fn`: the limit is checked on the backend before \
             the body runs",
        ));
    }
    match &func.sig.output {
        ReturnType::Default => errors.push(syn::Error::new_spanned(
            &func.sig.ident,
            "a #[rate_limited] function must return `Result<T, E>` with \
             `E: From<redis_patterns::RateLimited>`, so that a denied call can return an error",
        )),
        ReturnType::Type(_, ty) if matches!(**ty, Type::ImplTrait(_)) => {
            errors.push(syn::Error::new_spanned(
                ty,
                "a #[rate_limited] function must return a concrete `Result<T, E>` with \
                 `E: From<redis_patterns::RateLimited>`, not `impl Trait`",
            ))
        }
        ReturnType::Type(..) => {}
    }
    if !errors.is_empty() {
        let mut out = errors.into_compile_errors();
        out.extend(quote!(#func));
        return out;
    }
    generate(&func, &limits)
}

fn parse(tokens: TokenStream, span: Span, func: &ItemFn, errors: &mut Errors) -> Limit {
    let mut limit = Limit {
        key: default_key(func),
        limit: None,
        window_ms: None,
        algorithm: 0,
        burst: None,
        cost: None,
        deny_on_error: false,
        client: None,
        krate: None,
    };
    let mut burst_span = None;
    let mut limit_given = false;
    let mut window_given = false;
    for (name, meta) in attr::options(tokens, "rate_limited", OPTIONS, errors) {
        match name.as_str() {
            "key" => {
                if let Some(lit) = string(&meta, errors, "\"api:<user_id>\"") {
                    limit.key = explicit_key(&lit, errors);
                }
            }
            "limit" => {
                limit_given = true;
                limit.limit = count(&meta, errors, "limit", false);
            }
            "window" => {
                window_given = true;
                limit.window_ms = attr::duration_value(&meta, errors, "window", false);
            }
            "algorithm" => {
                if let Some(lit) = string(&meta, errors, "\"gcra\"") {
                    let value = lit.value();
                    match ALGORITHMS.iter().position(|(a, _)| *a == value) {
                        Some(i) => limit.algorithm = i,
                        None => {
                            let names = ALGORITHMS.iter().map(|(a, _)| *a);
                            let hint = did_you_mean(&value, names.clone())
                                .map(|s| format!(" (did you mean `{s}`?)"))
                                .unwrap_or_default();
                            errors.push(syn::Error::new(
                                lit.span(),
                                format!(
                                    "no rate limit algorithm `{value}`{hint}; expected one of {}",
                                    attr::list(&names.collect::<Vec<_>>())
                                ),
                            ));
                        }
                    }
                }
            }
            "burst" => {
                burst_span = Some(meta.path().span());
                if let Some(Expr::Lit(ExprLit {
                    lit: Lit::Int(n), ..
                })) = count(&meta, errors, "burst", true)
                {
                    limit.burst = n.base10_parse().ok();
                }
            }
            "cost" => limit.cost = count(&meta, errors, "cost", false),
            "on_error" => {
                if let Some(lit) = string(&meta, errors, "\"deny\"") {
                    match lit.value().as_str() {
                        "allow" => limit.deny_on_error = false,
                        "deny" => limit.deny_on_error = true,
                        other => errors.push(syn::Error::new(
                            lit.span(),
                            format!(
                                "no failure policy `{other}`; expected `allow` (admit calls while \
                                 the backend is unreachable) or `deny`"
                            ),
                        )),
                    }
                }
            }
            "client" => limit.client = attr::client(meta, errors),
            "crate" => limit.krate = attr::crate_path(&meta, errors),
            _ => unreachable!("option list and match arms agree"),
        }
    }
    if !limit_given {
        errors.push(syn::Error::new(
            span,
            "#[rate_limited] needs a `limit`: units per window, e.g. `limit = 100`, or an \
             expression over the parameters such as `limit = if premium { 1000 } else { 100 }`",
        ));
    }
    if !window_given {
        errors.push(syn::Error::new(
            span,
            "#[rate_limited] needs a `window`, e.g. `window = \"1m\"` or `window = 60` (seconds)",
        ));
    }
    let (algorithm, _) = ALGORITHMS[limit.algorithm];
    if let Some(burst_span) = burst_span.filter(|_| !has_burst(algorithm)) {
        errors.push(syn::Error::new(
            burst_span,
            format!(
                "`burst` applies to `algorithm = \"token_bucket\"` and `\"gcra\"`; \
                 `{algorithm}` has no burst: remove it or choose one of those"
            ),
        ));
    }
    limit
}

/// A string option's literal, also when it arrives through a `macro_rules!` fragment.
fn string(meta: &Meta, errors: &mut Errors, example: &str) -> Option<LitStr> {
    let expr = attr::value(meta, errors)?;
    match ungroup(expr) {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.clone()),
        other => {
            let name = meta.path().to_token_stream().to_string();
            errors.push(syn::Error::new_spanned(
                other,
                format!("`{name}` takes a string literal, e.g. `{name} = {example}`"),
            ));
            None
        }
    }
}

/// `expr` without the invisible parentheses a `macro_rules!` fragment puts around it.
fn ungroup(expr: &Expr) -> &Expr {
    match expr {
        Expr::Group(g) => ungroup(&g.expr),
        other => other,
    }
}

/// The value of `limit`, `burst` or `cost`: a whole number, or (except for `burst`) an
/// expression over the parameters. A literal zero is an error except for `cost`.
fn count(meta: &Meta, errors: &mut Errors, name: &str, literal_only: bool) -> Option<Expr> {
    let expr = ungroup(attr::value(meta, errors)?);
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(n), ..
        }) => match n.base10_parse::<u64>() {
            Ok(0) if name != "cost" => {
                errors.push(syn::Error::new_spanned(
                    n,
                    format!("`{name}` must be greater than zero: zero would deny every call"),
                ));
                None
            }
            Ok(_) => Some(expr.clone()),
            Err(e) => {
                errors.push(syn::Error::new_spanned(n, format!("invalid `{name}`: {e}")));
                None
            }
        },
        Expr::Lit(other) => {
            errors.push(syn::Error::new_spanned(
                other,
                format!("`{name}` takes a whole number, e.g. `{name} = 10`"),
            ));
            None
        }
        _ if literal_only => {
            errors.push(syn::Error::new_spanned(
                expr,
                format!("`{name}` takes a whole number, e.g. `{name} = 10`"),
            ));
            None
        }
        _ => Some(expr.clone()),
    }
}

/// Without `key`: one limit for the whole function, named by its path.
fn default_key(func: &ItemFn) -> Key {
    Key::default_for(func, &[])
}

fn generate(func: &ItemFn, limits: &[Limit]) -> TokenStream {
    let krate: syn::Path = limits
        .iter()
        .find_map(|l| l.krate.clone())
        .unwrap_or_else(|| syn::parse_quote!(::redis_patterns));
    let mut setup = Vec::new();
    let mut checks = Vec::new();
    for (i, l) in limits.iter().enumerate() {
        let client = client_tokens(&krate, l.client.as_ref());
        let key = key_tokens(&krate, &l.key);
        let name = name_tokens(&l.key);
        let variant = format_ident!("{}", ALGORITHMS[l.algorithm].1);
        let window = l.window_ms.unwrap_or(0);
        let burst = match l.burst {
            Some(b) => quote!(::core::option::Option::Some(#b)),
            None => quote!(::core::option::Option::None),
        };
        let on_error = if l.deny_on_error {
            quote!(#krate::__private::RateOnError::Deny)
        } else {
            quote!(#krate::__private::RateOnError::Allow)
        };
        // `u64` located at the user's expression, so a wrong type is reported there, but
        // resolved at the call site, so the binding is found even when the expression comes
        // from a `macro_rules!` fragment with other hygiene.
        let at = |e: &syn::Expr| e.span().resolved_at(proc_macro2::Span::call_site());
        let limit = l.limit.as_ref().map(|e| {
            let span = at(e);
            quote_spanned!(span=> let __rp_limit: u64 = #e;)
        });
        let cost = match &l.cost {
            Some(e) => {
                let span = at(e);
                quote_spanned!(span=> let __rp_cost: u64 = #e;)
            }
            None => quote!(let __rp_cost: u64 = 1;),
        };
        let spec = format_ident!("__RP_RATE_{}", i);
        let check = format_ident!("__rp_check_{}", i);
        setup.push(quote! {
            #client
            #key
            static #spec: #krate::__private::RateSpec = #krate::__private::RateSpec::new(
                #name,
                #krate::__private::RateAlgorithm::#variant,
                #window,
                #burst,
                #on_error,
            );
            #limit
            #cost
            let #check = #krate::__private::RateCheck::new(
                __rp_client, &#spec, __rp_key, __rp_limit, __rp_cost,
            );
        });
        checks.push(check);
    }
    let ret = ret_tokens(func);
    let denied = quote_spanned! {ret_span(func)=>
        <#ret as #krate::__private::RateLimitedReturn>::rate_limited(__rp_denied)
    };
    let body = body_tokens(func);
    let ItemFn {
        attrs, vis, sig, ..
    } = func;
    quote! {
        #(#attrs)*
        #vis #sig {
            #(#setup)*
            if let ::core::result::Result::Err(__rp_denied) =
                #krate::__private::rate_limited(&[#(#checks),*]).await
            {
                return #denied;
            }
            #body.await
        }
    }
}
