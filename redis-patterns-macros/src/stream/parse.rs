//! The options of `#[stream_consumer]` and `#[job]`, each read as what it takes and reported
//! at its token.

use proc_macro2::TokenStream;
use syn::{Expr, ExprLit, Lit, LitStr, Meta};

use super::Kind;
use crate::common::duration::Millis;
use crate::common::errors::Errors;
use crate::common::literal;
use crate::common::options::Options as Read;

const CONSUMER_OPTIONS: &[&str] = &[
    "stream",
    "group",
    "concurrency",
    "max_deliveries",
    "visibility",
    "batch",
    "retry_backoff",
    "crate",
];

const JOB_OPTIONS: &[&str] = &[
    "queue",
    "concurrency",
    "max_attempts",
    "visibility",
    "retry_backoff",
    "crate",
];

/// The most handlers one consumer runs at once, and the most events one read asks for.
pub const MAX_CONCURRENCY: u64 = 10_000;
/// The most deliveries an event, or attempts a job, may get.
pub const MAX_DELIVERIES: u64 = 1_000;

/// The options as given; `None` where an option is absent or its value was reported.
pub struct Options {
    pub stream: Option<LitStr>,
    pub queue: Option<LitStr>,
    pub group: Option<LitStr>,
    pub concurrency: Option<u64>,
    pub max_deliveries: Option<u64>,
    pub visibility: Option<(Millis, proc_macro2::Span)>,
    pub batch: Option<u64>,
    pub retry_backoff: Option<Millis>,
    pub krate: Option<syn::Path>,
    /// False after a syntax error: no option is then reported missing.
    pub complete: bool,
    /// The names of the options given.
    pub given: Vec<String>,
}

pub fn parse(kind: Kind, tokens: TokenStream, errors: &mut Errors) -> Options {
    let mut options = Options {
        stream: None,
        queue: None,
        group: None,
        concurrency: None,
        max_deliveries: None,
        visibility: None,
        batch: None,
        retry_backoff: None,
        krate: None,
        complete: true,
        given: Vec::new(),
    };
    let (known, other, others) = match kind {
        Kind::StreamConsumer => (CONSUMER_OPTIONS, Kind::Job, JOB_OPTIONS),
        Kind::Job => (JOB_OPTIONS, Kind::StreamConsumer, CONSUMER_OPTIONS),
    };
    let read = Read::parse(tokens, kind.attribute(), known, errors)
        .belonging_to(other.attribute(), others);
    options.complete = read.complete;
    for (name, meta) in read.all(errors) {
        match name.as_str() {
            "stream" => options.stream = name_literal(&meta, errors, "\"orders\""),
            "group" => options.group = name_literal(&meta, errors, "\"billing\""),
            "queue" => options.queue = name_literal(&meta, errors, "\"emails\""),
            "concurrency" => {
                options.concurrency = whole(&meta, errors, MAX_CONCURRENCY, "handlers at once")
            }
            "max_deliveries" => {
                options.max_deliveries =
                    whole(&meta, errors, MAX_DELIVERIES, "deliveries of an event")
            }
            "max_attempts" => {
                options.max_deliveries = whole(&meta, errors, MAX_DELIVERIES, "attempts of a job")
            }
            "visibility" => {
                let span = literal::value(&meta, errors).map(syn::spanned::Spanned::span);
                options.visibility = literal::duration(&meta, errors, false).zip(span);
            }
            "batch" => options.batch = whole(&meta, errors, MAX_CONCURRENCY, "events per read"),
            "retry_backoff" => options.retry_backoff = literal::duration(&meta, errors, true),
            "crate" => options.krate = literal::crate_path(&meta, errors),
            _ => unreachable!("the option list and the match arms agree"),
        }
        options.given.push(name);
    }
    options
}

/// A non-empty string literal naming a stream or a group.
fn name_literal(meta: &Meta, errors: &mut Errors, example: &str) -> Option<LitStr> {
    let lit = literal::string(meta, errors, example)?;
    if lit.value().is_empty() {
        errors.push(syn::Error::new_spanned(
            &lit,
            format!("the name must not be empty, e.g. {example}"),
        ));
        return None;
    }
    Some(lit)
}

/// A whole number from 1 to `max`; `what` says what it counts.
fn whole(meta: &Meta, errors: &mut Errors, max: u64, what: &str) -> Option<u64> {
    let Expr::Lit(ExprLit {
        lit: Lit::Int(n), ..
    }) = literal::count(meta, errors, true, true)?
    else {
        return None;
    };
    match n.base10_parse::<u64>() {
        Ok(value) if (1..=max).contains(&value) => Some(value),
        _ => {
            let name = meta.path().get_ident().map(ToString::to_string);
            let name = name.as_deref().unwrap_or("the option");
            errors.push(syn::Error::new_spanned(
                n,
                format!("`{name}` is the number of {what}, from 1 to {max}"),
            ));
            None
        }
    }
}
