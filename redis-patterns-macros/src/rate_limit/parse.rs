//! The `#[rate_limited]` attributes of a function, and each one's options, read as what they
//! take and reported at their tokens.

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, ItemFn, Lit, LitStr, Meta};

use crate::common::duration::Millis;
use crate::common::errors::Errors;
use crate::common::literal;
use crate::common::mode::{self, Mode};
use crate::common::options::Options as Read;

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

/// The options of this attribute and of the `#[rate_limited]` ones below it, top to bottom,
/// each with where it is written; the ones below are taken out of `item`'s attributes.
pub fn take_stacked(
    args: TokenStream,
    item: &mut ItemFn,
    errors: &mut Errors,
) -> Vec<(TokenStream, Span)> {
    let mut stacked = vec![(args, Span::call_site())];
    let mut kept = Vec::with_capacity(item.attrs.len());
    for attribute in std::mem::take(&mut item.attrs) {
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
    item.attrs = kept;
    stacked
}

fn is_rate_limited(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "rate_limited")
}

/// How calls are counted against the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    SlidingWindow,
    FixedWindow,
    SlidingWindowCounter,
    TokenBucket,
    Gcra,
}

impl Mode for Algorithm {
    const WHAT: &'static str = "rate limit algorithm";
    const VALUES: &'static [(&'static str, Self)] = &[
        ("sliding_window", Algorithm::SlidingWindow),
        ("fixed_window", Algorithm::FixedWindow),
        ("sliding_window_counter", Algorithm::SlidingWindowCounter),
        ("token_bucket", Algorithm::TokenBucket),
        ("gcra", Algorithm::Gcra),
    ];
    const EXAMPLE: &'static str = "gcra";
}

impl Algorithm {
    /// Whether `burst` tunes it.
    pub fn has_burst(self) -> bool {
        matches!(self, Algorithm::TokenBucket | Algorithm::Gcra)
    }
}

/// What a call does while the backend is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    Allow,
    Deny,
}

impl Mode for OnError {
    const WHAT: &'static str = "failure policy";
    const VALUES: &'static [(&'static str, Self)] =
        &[("allow", OnError::Allow), ("deny", OnError::Deny)];
    const EXAMPLE: &'static str = "deny";

    fn expected() -> String {
        "`allow` (admit calls while the backend is unreachable) or `deny`".into()
    }
}

/// The options as given; `None` where an option is absent or its value was reported.
pub struct Options {
    pub key: Option<LitStr>,
    /// Units per window: a whole number or an expression over the parameters.
    pub limit: Option<Expr>,
    pub window: Option<Millis>,
    pub algorithm: Option<Algorithm>,
    pub burst: Option<u64>,
    /// Units a call takes: a whole number or an expression over the parameters.
    pub cost: Option<Expr>,
    pub on_error: Option<OnError>,
    pub client: Option<Expr>,
    pub krate: Option<syn::Path>,
    /// Each option given, with where it was written: for the checks of options that need
    /// another.
    /// False after a syntax error: no option is then reported missing.
    pub complete: bool,
    pub given: Vec<(String, Span)>,
}

pub fn parse(tokens: TokenStream, errors: &mut Errors) -> Options {
    let mut options = Options {
        key: None,
        limit: None,
        window: None,
        algorithm: None,
        burst: None,
        cost: None,
        on_error: None,
        client: None,
        krate: None,
        given: Vec::new(),
        complete: true,
    };
    let read = Read::parse(tokens, "rate_limited", OPTIONS, errors);
    options.complete = read.complete;
    for (name, meta) in read.all(errors) {
        match name.as_str() {
            "key" => options.key = literal::string(&meta, errors, "\"api:<user_id>\""),
            "limit" => options.limit = literal::count(&meta, errors, false, false),
            "window" => options.window = literal::duration(&meta, errors, false),
            "algorithm" => options.algorithm = mode::parse(&meta, errors),
            "burst" => {
                if let Some(Expr::Lit(ExprLit {
                    lit: Lit::Int(n), ..
                })) = literal::count(&meta, errors, true, false)
                {
                    options.burst = n.base10_parse().ok();
                }
            }
            "cost" => options.cost = literal::count(&meta, errors, false, true),
            "on_error" => options.on_error = mode::parse(&meta, errors),
            "client" => options.client = literal::client(&meta, errors),
            "crate" => options.krate = literal::crate_path(&meta, errors),
            _ => unreachable!("option list and match arms agree"),
        }
        options.given.push((name, meta.path().span()));
    }
    options
}
