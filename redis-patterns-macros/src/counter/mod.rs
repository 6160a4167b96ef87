//! `#[counted(key = "views:<page>", window = "1d")]`: counts the function's calls in a
//! windowed counter. Parse the options, validate them with the function into a typed
//! configuration, expand it.

mod expand;
mod parse;
mod validate;

use proc_macro2::TokenStream;

use crate::common::errors::Errors;
use crate::common::function::Function;

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let options = parse::parse(args, &mut errors);
    let function = match Function::parse(item, "counted") {
        Ok(item) => Function::new(item),
        Err(tokens) => return tokens,
    };
    match validate::validate(options, &function, &mut errors) {
        Some(config) => expand::expand(&config, &function),
        None => errors.with_item(&function.item),
    }
}
