//! `#[rate_limited]`: checks one or more limits before the body runs and returns
//! `Err(RateLimited.into())` when one denies. Parse each attribute's options, validate them
//! with the function into a typed configuration, expand it.
//!
//! Stacked attributes are expanded together: the outermost one takes the others out of the
//! function's attributes and generates one combined check, so that a call denied by one limit
//! consumes nothing from the others (see `redis_patterns::__private::rate_limited`).

mod expand;
mod parse;
mod validate;

use proc_macro2::TokenStream;

use crate::common::errors::Errors;
use crate::common::function::Function;

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let mut item = match Function::parse(item, "rate_limited") {
        Ok(item) => item,
        Err(tokens) => return tokens,
    };
    let stacked = parse::take_stacked(args, &mut item, &mut errors);
    let function = Function::new(item);

    let checked: Vec<validate::Checked> = stacked
        .into_iter()
        .map(|(tokens, span)| {
            let options = parse::parse(tokens, &mut errors);
            validate::check_limit(options, span, &function, &mut errors)
        })
        .collect();
    validate::check_function(&function, &mut errors);
    match validate::config(checked, &errors) {
        Some(config) => expand::expand(&config, &function),
        None => errors.with_item(&function.item),
    }
}
