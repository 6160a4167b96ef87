//! `#[stream_consumer]`'s options checked together and against the function, into the
//! configuration the expansion trusts.

use proc_macro2::Span;
use syn::LitStr;

use super::parse::Options;
use crate::common::codegen::Krate;
use crate::common::duration::Millis;
use crate::common::errors::Errors;
use crate::common::function::Function;

/// The shortest visibility timeout (`redis_patterns::stream::Consumer::visibility`).
const MIN_VISIBILITY_MS: u64 = 100;

pub struct Config {
    pub krate: Krate,
    pub stream: LitStr,
    pub group: LitStr,
    pub concurrency: u64,
    pub max_deliveries: u64,
    pub visibility: Millis,
    /// 0: as many as handlers are free.
    pub batch: u64,
    pub retry_backoff: Millis,
    /// Whether the handler takes the delivery (its second parameter).
    pub takes_delivery: bool,
}

/// The configuration, or `None` when errors were reported.
pub fn validate(options: Options, function: &Function, errors: &mut Errors) -> Option<Config> {
    for (option, example) in [("stream", "\"orders\""), ("group", "\"billing\"")] {
        if options.complete && !options.given.iter().any(|g| g == option) {
            errors.push(syn::Error::new(
                Span::call_site(),
                format!(
                    "#[stream_consumer] needs a `{option}`, e.g. `{option} = {example}`: the \
                     consumer reads the events of a stream as one of the consumers of a group"
                ),
            ));
        }
    }
    if let Some((Millis(ms), span)) = options.visibility
        && ms < MIN_VISIBILITY_MS
    {
        errors.push(syn::Error::new(
            span,
            format!(
                "`visibility` must be at least {MIN_VISIBILITY_MS}ms: it is how long an event \
                 stays with a consumer that stopped answering before another claims it"
            ),
        ));
    }
    let sig = &function.item.sig;
    function.require_async(
        "stream_consumer",
        "the consumer awaits the handler for each event",
        errors,
    );
    if let Some(receiver) = sig.receiver() {
        errors.push(syn::Error::new_spanned(
            receiver,
            "a #[stream_consumer] handler is a free function: it cannot take `self`",
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "a #[stream_consumer] handler cannot be generic: the event type decides what its \
             JSON decodes into",
        ));
    }
    let takes_delivery = match function.params.len() {
        1 => false,
        2 => true,
        _ if function.has_self => false,
        n => {
            let message = "a #[stream_consumer] handler takes the event, and optionally its \
                           delivery: `async fn bill(order: Order)` or `async fn bill(order: \
                           Order, delivery: redis_patterns::stream::Delivery)`";
            errors.push(match n {
                0 => syn::Error::new(sig.paren_token.span.join(), message),
                _ => syn::Error::new_spanned(&sig.inputs, message),
            });
            false
        }
    };
    if let Some(syn::Type::Reference(borrowed)) = function.params.first().map(|p| &p.ty) {
        errors.push(syn::Error::new_spanned(
            borrowed,
            "a #[stream_consumer] handler takes its event by value: each event is decoded from \
             its JSON into an owned value that the handler's task keeps (`order: Order`, \
             `text: String`)",
        ));
    }
    function.check_return(
        Some(
            "a #[stream_consumer] handler must return `Result<(), E>` with `E: Display`: `Ok` \
             acknowledges the event, `Err` retries it",
        ),
        "a #[stream_consumer] handler must return a concrete `Result<(), E>`, not `impl Trait`",
        errors,
    );
    if !errors.is_empty() {
        return None;
    }
    Some(Config {
        krate: Krate::new(options.krate),
        stream: options.stream?,
        group: options.group?,
        concurrency: options.concurrency.unwrap_or(8),
        max_deliveries: options.max_deliveries.unwrap_or(5),
        visibility: options.visibility.map_or(Millis(30_000), |(ms, _)| ms),
        batch: options.batch.unwrap_or(0),
        retry_backoff: options.retry_backoff.unwrap_or(Millis(100)),
        takes_delivery,
    })
}
