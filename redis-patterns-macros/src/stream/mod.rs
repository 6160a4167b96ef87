//! `#[stream_consumer(stream = "orders", group = "billing")]` and `#[job(queue = "emails")]`:
//! turn a handler of a stream's events, or of a queue's jobs, into a `const` consumer or
//! worker. Parse the options, validate them with the function into a typed configuration,
//! expand it.

mod expand;
mod parse;
mod validate;

use proc_macro2::TokenStream;

use crate::common::errors::Errors;
use crate::common::function::Function;

/// Which attribute: they differ in their options, what the handler's context is, and what
/// the constant holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    StreamConsumer,
    Job,
}

impl Kind {
    pub fn attribute(self) -> &'static str {
        match self {
            Kind::StreamConsumer => "stream_consumer",
            Kind::Job => "job",
        }
    }
}

pub fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let options = parse::parse(kind, args, &mut errors);
    let function = match Function::parse(item, kind.attribute()) {
        Ok(item) => Function::new(item),
        Err(tokens) => return tokens,
    };
    match validate::validate(kind, options, &function, &mut errors) {
        Some(config) => expand::expand(&config, &function),
        None => errors.with_item(&function.item),
    }
}
