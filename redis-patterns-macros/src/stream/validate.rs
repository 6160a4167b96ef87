//! The options of `#[stream_consumer]` and `#[job]` checked together and against the
//! function, into the configuration the expansion trusts.

use proc_macro2::Span;
use syn::LitStr;

use super::Kind;
use super::parse::Options;
use crate::common::codegen::Krate;
use crate::common::duration::Millis;
use crate::common::errors::Errors;
use crate::common::function::Function;

/// The shortest visibility timeout (`Consumer::visibility`, `Worker::visibility`).
const MIN_VISIBILITY_MS: u64 = 100;

/// Where the messages come from.
pub enum Source {
    Stream { stream: LitStr, group: LitStr },
    Queue { queue: LitStr },
}

pub struct Config {
    pub krate: Krate,
    pub source: Source,
    pub concurrency: u64,
    /// `max_deliveries` of an event, `max_attempts` of a job.
    pub max_deliveries: u64,
    pub visibility: Millis,
    /// 0: as many as handlers are free (consumers only).
    pub batch: u64,
    pub retry_backoff: Millis,
    /// Whether the handler takes its context (the delivery, the job) as second parameter.
    pub takes_context: bool,
}

/// What the handler is called in messages, and what it handles.
fn words(kind: Kind) -> (&'static str, &'static str, &'static str) {
    match kind {
        Kind::StreamConsumer => (
            "#[stream_consumer]",
            "event",
            "`async fn bill(order: Order)` or `async fn bill(order: Order, delivery: \
             redis_patterns::stream::Delivery)`",
        ),
        Kind::Job => (
            "#[job]",
            "job",
            "`async fn send(mail: Mail)` or `async fn send(mail: Mail, job: \
             redis_patterns::queue::Job)`",
        ),
    }
}

/// The configuration, or `None` when errors were reported.
pub fn validate(
    kind: Kind,
    options: Options,
    function: &Function,
    errors: &mut Errors,
) -> Option<Config> {
    let (attribute, message, forms) = words(kind);
    let required: &[(&str, &str)] = match kind {
        Kind::StreamConsumer => &[("stream", "\"orders\""), ("group", "\"billing\"")],
        Kind::Job => &[("queue", "\"emails\"")],
    };
    for (option, example) in required {
        if options.complete && !options.given.iter().any(|g| g == option) {
            let what = match kind {
                Kind::StreamConsumer => {
                    "the consumer reads the events of a stream as one of the consumers of a group"
                }
                Kind::Job => "the worker runs the jobs pushed to that queue",
            };
            errors.push(syn::Error::new(
                Span::call_site(),
                format!("{attribute} needs a `{option}`, e.g. `{option} = {example}`: {what}"),
            ));
        }
    }
    if let Some((Millis(ms), span)) = options.visibility
        && ms < MIN_VISIBILITY_MS
    {
        errors.push(syn::Error::new(
            span,
            format!(
                "`visibility` must be at least {MIN_VISIBILITY_MS}ms: it is how long {} stays \
                 with a consumer that stopped answering before another claims it",
                if kind == Kind::Job {
                    "a job"
                } else {
                    "an event"
                }
            ),
        ));
    }
    let sig = &function.item.sig;
    function.require_async(
        kind.attribute(),
        &format!("the handler is awaited for each {message}"),
        errors,
    );
    if let Some(receiver) = sig.receiver() {
        errors.push(syn::Error::new_spanned(
            receiver,
            format!("a {attribute} handler is a free function: it cannot take `self`"),
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            format!(
                "a {attribute} handler cannot be generic: the {message} type decides what its \
                 JSON decodes into"
            ),
        ));
    }
    let takes_context = match function.params.len() {
        1 => false,
        2 => true,
        _ if function.has_self => false,
        n => {
            let text = format!(
                "a {attribute} handler takes the {message}, and optionally its context: {forms}"
            );
            errors.push(match n {
                0 => syn::Error::new(sig.paren_token.span.join(), text),
                _ => syn::Error::new_spanned(&sig.inputs, text),
            });
            false
        }
    };
    if let Some(syn::Type::Reference(borrowed)) = function.params.first().map(|p| &p.ty) {
        errors.push(syn::Error::new_spanned(
            borrowed,
            format!(
                "a {attribute} handler takes its {message} by value: each is decoded from its \
                 JSON into an owned value that the handler's task keeps (`order: Order`, \
                 `text: String`)"
            ),
        ));
    }
    function.check_return(
        Some(&format!(
            "a {attribute} handler must return `Result<(), E>` with `E: Display`: `Ok` is done \
             with the {message}, `Err` retries it"
        )),
        &format!("a {attribute} handler must return a concrete `Result<(), E>`, not `impl Trait`"),
        errors,
    );
    if !errors.is_empty() {
        return None;
    }
    let source = match kind {
        Kind::StreamConsumer => Source::Stream {
            stream: options.stream?,
            group: options.group?,
        },
        Kind::Job => Source::Queue {
            queue: options.queue?,
        },
    };
    let (concurrency, max_deliveries, backoff) = match kind {
        Kind::StreamConsumer => (8, 5, 100),
        Kind::Job => (4, 3, 1_000),
    };
    Some(Config {
        krate: Krate::new(options.krate),
        source,
        concurrency: options.concurrency.unwrap_or(concurrency),
        max_deliveries: options.max_deliveries.unwrap_or(max_deliveries),
        visibility: options.visibility.map_or(Millis(30_000), |(ms, _)| ms),
        batch: options.batch.unwrap_or(0),
        retry_backoff: options.retry_backoff.unwrap_or(Millis(backoff)),
        takes_context,
    })
}
