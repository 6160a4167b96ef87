//! `#[with_lock]`'s options, each read as what it takes and reported at its token.

use proc_macro2::TokenStream;
use syn::{Expr, LitStr};

use crate::common::duration::Millis;
use crate::common::errors::Errors;
use crate::common::literal;
use crate::common::mode::{self, Mode};
use crate::common::options::Options as Read;

const OPTIONS: &[&str] = &[
    "key", "ttl", "wait", "retry", "extend", "on_lost", "fenced", "client", "crate",
];

/// What a function that lost its lock does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnLost {
    /// Cancel the body at its next await and return `LockError::Lost`.
    Abort,
    /// Let the body finish.
    Continue,
}

impl Mode for OnLost {
    const WHAT: &'static str = "`on_lost` policy";
    const VALUES: &'static [(&'static str, Self)] =
        &[("abort", OnLost::Abort), ("continue", OnLost::Continue)];
    const EXAMPLE: &'static str = "continue";
}

/// The options as given; `None` where an option is absent or its value was reported.
pub struct Options {
    pub key: Option<LitStr>,
    pub ttl: Option<Millis>,
    pub wait: Option<Millis>,
    pub retry: Option<Millis>,
    pub extend: Option<bool>,
    pub on_lost: Option<OnLost>,
    pub fenced: Option<bool>,
    pub client: Option<Expr>,
    pub krate: Option<syn::Path>,
    /// The names of the options given.
    /// False after a syntax error: no option is then reported missing.
    pub complete: bool,
    pub given: Vec<String>,
}

pub fn parse(tokens: TokenStream, errors: &mut Errors) -> Options {
    let mut options = Options {
        key: None,
        ttl: None,
        wait: None,
        retry: None,
        extend: None,
        on_lost: None,
        fenced: None,
        client: None,
        krate: None,
        given: Vec::new(),
        complete: true,
    };
    let read = Read::parse(tokens, "with_lock", OPTIONS, errors);
    options.complete = read.complete;
    for (name, meta) in read.all(errors) {
        match name.as_str() {
            "key" => options.key = literal::string(&meta, errors, "\"product:<id>\""),
            "ttl" => options.ttl = literal::duration(&meta, errors, false),
            "wait" => options.wait = literal::duration(&meta, errors, true),
            "retry" => options.retry = literal::duration(&meta, errors, false),
            "extend" => {
                options.extend = literal::boolean(
                    &meta,
                    errors,
                    "`extend` takes `true` (renew the lease every ttl/3 while the function runs) \
                     or `false`",
                )
            }
            "on_lost" => options.on_lost = mode::parse(&meta, errors),
            "fenced" => {
                options.fenced = literal::boolean(
                    &meta,
                    errors,
                    "`fenced` takes `true` (issue the fencing token with the lock, for bodies \
                     that always call `fencing_token()`) or `false`",
                )
            }
            "client" => options.client = literal::client(&meta, errors),
            "crate" => options.krate = literal::crate_path(&meta, errors),
            _ => unreachable!("the option list and the match arms agree"),
        }
        options.given.push(name);
    }
    options
}
