//! `#[counted]`'s options checked together and against the function, into the configuration
//! the expansion trusts.

use proc_macro2::Span;

use super::parse::{OnError, Options};
use crate::common::codegen::{Krate, Target};
use crate::common::duration::Millis;
use crate::common::errors::Errors;
use crate::common::function::Function;
use crate::common::key::Key;

pub struct Config {
    pub target: Target,
    /// The width of a window of the counter.
    pub window: Millis,
    /// Windows kept, the current one included.
    pub keep: u32,
    pub on_error: OnError,
}

/// The configuration, or `None` when errors were reported.
pub fn validate(options: Options, function: &Function, errors: &mut Errors) -> Option<Config> {
    if options.complete && !options.given.iter().any(|g| g == "window") {
        errors.push(syn::Error::new(
            Span::call_site(),
            "#[counted] needs a `window`, e.g. `window = \"1d\"`: calls are counted per window \
             of the clock (per day here), each kept for `keep` windows",
        ));
    }
    // Without a key: one counter for the whole function, named by its path.
    let key = match &options.key {
        Some(lit) => Key::explicit(lit, errors),
        None => Key::default_for(&function.item, &[]),
    };
    key.check_placeholders(function, errors);
    function.require_async(
        "counted",
        "the call is counted on the backend while the body runs",
        errors,
    );
    let on_error = options.on_error.unwrap_or(OnError::Ignore);
    if on_error == OnError::Fail {
        function.check_return(
            Some(
                "a #[counted(on_error = \"fail\")] function must return `Result<T, E>` with \
                 `E: From<redis_patterns::Error>`, so that a call that could not be counted can \
                 return the error",
            ),
            "a #[counted(on_error = \"fail\")] function must return a concrete `Result<T, E>`, \
             not `impl Trait`",
            errors,
        );
    }
    let window = options.window.filter(|_| errors.is_empty())?;
    Some(Config {
        target: Target {
            krate: Krate::new(options.krate),
            client: options.client,
            key,
        },
        window,
        keep: options.keep.unwrap_or(2),
        on_error,
    })
}
