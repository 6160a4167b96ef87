//! `#[counted]`'s options, each read as what it takes and reported at its token.

use proc_macro2::TokenStream;
use syn::{Expr, ExprLit, Lit, LitStr};

use crate::common::duration::Millis;
use crate::common::errors::Errors;
use crate::common::literal;
use crate::common::mode::{self, Mode};
use crate::common::options::Options as Read;

const OPTIONS: &[&str] = &["key", "window", "keep", "on_error", "client", "crate"];

/// The most windows a counter keeps (`redis_patterns::counter::MAX_KEEP`).
const MAX_KEEP: u32 = 10_000;

/// What a call does when it cannot be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Run the function uncounted.
    Ignore,
    /// Return the error without running the function.
    Fail,
}

impl Mode for OnError {
    const WHAT: &'static str = "failure policy";
    const VALUES: &'static [(&'static str, Self)] =
        &[("ignore", OnError::Ignore), ("fail", OnError::Fail)];
    const EXAMPLE: &'static str = "ignore";
}

/// The options as given; `None` where an option is absent or its value was reported.
pub struct Options {
    pub key: Option<LitStr>,
    pub window: Option<Millis>,
    pub keep: Option<u32>,
    pub on_error: Option<OnError>,
    pub client: Option<Expr>,
    pub krate: Option<syn::Path>,
    /// False after a syntax error: no option is then reported missing.
    pub complete: bool,
    /// The names of the options given.
    pub given: Vec<String>,
}

pub fn parse(tokens: TokenStream, errors: &mut Errors) -> Options {
    let mut options = Options {
        key: None,
        window: None,
        keep: None,
        on_error: None,
        client: None,
        krate: None,
        complete: true,
        given: Vec::new(),
    };
    let read = Read::parse(tokens, "counted", OPTIONS, errors);
    options.complete = read.complete;
    for (name, meta) in read.all(errors) {
        match name.as_str() {
            "key" => options.key = literal::string(&meta, errors, "\"views:<page>\""),
            "window" => options.window = literal::duration(&meta, errors, false),
            "keep" => options.keep = keep(&meta, errors),
            "on_error" => options.on_error = mode::parse(&meta, errors),
            "client" => options.client = literal::client(&meta, errors),
            "crate" => options.krate = literal::crate_path(&meta, errors),
            _ => unreachable!("the option list and the match arms agree"),
        }
        options.given.push(name);
    }
    options
}

/// A whole number of windows from 1 to `MAX_KEEP`.
fn keep(meta: &syn::Meta, errors: &mut Errors) -> Option<u32> {
    let Expr::Lit(ExprLit {
        lit: Lit::Int(n), ..
    }) = literal::count(meta, errors, true, true)?
    else {
        return None;
    };
    match n.base10_parse::<u32>() {
        Ok(keep) if (1..=MAX_KEEP).contains(&keep) => Some(keep),
        _ => {
            errors.push(syn::Error::new_spanned(
                n,
                format!(
                    "`keep` is the number of windows kept, from 1 to {MAX_KEEP} (the current \
                     one included), e.g. `keep = 30`"
                ),
            ));
            None
        }
    }
}
