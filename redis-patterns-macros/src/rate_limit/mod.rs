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

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Attribute, Meta};

use crate::common::errors::Errors;
use crate::common::function::Function;

fn is_rate_limited(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "rate_limited")
}

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let mut item = match Function::parse(item, "rate_limited") {
        Ok(item) => item,
        Err(tokens) => return tokens,
    };
    // This attribute and the `#[rate_limited]` ones below it, top to bottom, each with where
    // it is written.
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
