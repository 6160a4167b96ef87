//! `#[rate_limited]`'s options checked together and against the function, into the
//! configuration the expansion trusts. Each stacked attribute is checked as it is read, so
//! that the errors follow the attributes' order.

use proc_macro2::Span;
use syn::Expr;

use super::parse::{Algorithm, OnError, Options};
use crate::common::codegen::{Krate, Target};
use crate::common::duration::Millis;
use crate::common::errors::Errors;
use crate::common::function::Function;
use crate::common::key::Key;
use crate::common::mode::Mode;

/// Every limit of the function, checked together.
pub struct Config {
    pub krate: Krate,
    pub limits: Vec<Limit>,
}

/// One `#[rate_limited(...)]`.
pub struct Limit {
    pub target: Target,
    /// Units per window.
    pub limit: Expr,
    pub window: Millis,
    pub algorithm: Algorithm,
    /// Only for the algorithms that have one.
    pub burst: Option<u64>,
    /// Units a call takes; `None`: one.
    pub cost: Option<Expr>,
    pub on_error: OnError,
}

/// One attribute's options after their checks, with its key.
pub struct Checked {
    options: Options,
    key: Key,
}

/// The checks of one attribute: its key, the options it needs, the ones that need another,
/// and the key's placeholders. `span`: where the attribute is written.
pub fn check_limit(
    options: Options,
    span: Span,
    function: &Function,
    errors: &mut Errors,
) -> Checked {
    // Without `key`: one limit for the whole function, named by its path.
    let key = match &options.key {
        Some(lit) => Key::explicit(lit, errors),
        None => Key::default_for(&function.item, &[]),
    };
    let given = |name: &str| options.given.iter().find(|(g, _)| g == name);
    if options.complete && given("limit").is_none() {
        errors.push(syn::Error::new(
            span,
            "#[rate_limited] needs a `limit`: units per window, e.g. `limit = 100`, or an \
             expression over the parameters such as `limit = if premium { 1000 } else { 100 }`",
        ));
    }
    if options.complete && given("window").is_none() {
        errors.push(syn::Error::new(
            span,
            "#[rate_limited] needs a `window`, e.g. `window = \"1m\"` or `window = 60` (seconds)",
        ));
    }
    let algorithm = algorithm(&options);
    if let Some((_, burst)) = given("burst").filter(|_| !algorithm.has_burst()) {
        errors.push(syn::Error::new(
            *burst,
            format!(
                "`burst` applies to `algorithm = \"token_bucket\"` and `\"gcra\"`; \
                 `{}` has no burst: remove it or choose one of those",
                algorithm.written()
            ),
        ));
    }
    key.check_placeholders(function, errors);
    Checked { options, key }
}

/// The algorithm chosen; the sliding window when none is (or the one given was reported).
fn algorithm(options: &Options) -> Algorithm {
    options.algorithm.unwrap_or(Algorithm::SlidingWindow)
}

/// The checks of the function itself: `async`, and a `Result` to return a denial in.
pub fn check_function(function: &Function, errors: &mut Errors) {
    function.require_async(
        "rate_limited",
        "the limit is checked on the backend before the body runs",
        errors,
    );
    function.check_return(
        Some(
            "a #[rate_limited] function must return `Result<T, E>` with \
             `E: From<redis_patterns::rate_limit::RateLimited>`, so that a denied call can return an error",
        ),
        "a #[rate_limited] function must return a concrete `Result<T, E>` with \
         `E: From<redis_patterns::rate_limit::RateLimited>`, not `impl Trait`",
        errors,
    );
}

/// The configuration, or `None` when errors were reported. The first `crate = "…"` given
/// names the runtime for every limit.
pub fn config(checked: Vec<Checked>, errors: &Errors) -> Option<Config> {
    if !errors.is_empty() {
        return None;
    }
    let krate = Krate::new(checked.iter().find_map(|c| c.options.krate.clone()));
    let limits = checked
        .into_iter()
        .map(|Checked { options, key }| {
            Some(Limit {
                algorithm: algorithm(&options),
                target: Target {
                    krate: krate.clone(),
                    client: options.client,
                    key,
                },
                limit: options.limit?,
                window: options.window?,
                burst: options.burst,
                cost: options.cost,
                on_error: options.on_error.unwrap_or(OnError::Allow),
            })
        })
        .collect::<Option<Vec<Limit>>>()?;
    Some(Config { krate, limits })
}
