//! `#[stream_consumer(stream = "orders", group = "billing")]`: turns a handler of a stream's
//! events into a `const` consumer of the group. Parse the options, validate them with the
//! function into a typed configuration, expand it.

mod expand;
mod parse;
mod validate;

use proc_macro2::TokenStream;

use crate::common::errors::Errors;
use crate::common::function::Function;

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let options = parse::parse(args, &mut errors);
    let function = match Function::parse(item, "stream_consumer") {
        Ok(item) => Function::new(item),
        Err(tokens) => return tokens,
    };
    match validate::validate(options, &function, &mut errors) {
        Some(config) => expand::expand(&config, &function),
        None => errors.with_item(&function.item),
    }
}
