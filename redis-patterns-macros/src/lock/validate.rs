//! `#[with_lock]`'s options checked together and against the function, into the configuration
//! the expansion trusts.

use proc_macro2::Span;

use super::parse::{OnLost, Options};
use crate::common::codegen::{Krate, Target};
use crate::common::duration::Millis;
use crate::common::errors::Errors;
use crate::common::function::Function;
use crate::common::key::Key;

pub struct Config {
    pub target: Target,
    /// The lease: how long a crashed holder keeps the lock.
    pub ttl: Millis,
    /// How long a call waits for the lock before it gives up.
    pub wait: Millis,
    /// The pause between tries while it waits.
    pub retry: Millis,
    pub lease: Lease,
    pub on_lost: OnLost,
    /// Issue the fencing token with the grant.
    pub fenced: bool,
}

/// Whether the lease is renewed while the function runs (`extend = true`, the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Renewed every ttl/3.
    Renewed,
    /// Ends `ttl` after it is taken.
    Fixed,
}

/// The configuration, or `None` when errors were reported.
pub fn validate(options: Options, function: &Function, errors: &mut Errors) -> Option<Config> {
    if options.complete && !options.given.iter().any(|g| g == "ttl") {
        errors.push(syn::Error::new(
            Span::call_site(),
            "#[with_lock] needs a `ttl`, e.g. `ttl = \"10s\"`: the lease after which a crashed \
             holder's lock is released (it is renewed while the function runs)",
        ));
    }
    // Without a key, one lock for the whole function: at most one call runs at a time.
    let key = match &options.key {
        Some(lit) => Key::explicit(lit, errors),
        None => Key::default_for(&function.item, &[]),
    };
    key.check_placeholders(function, errors);
    function.require_async(
        "with_lock",
        "the lock is taken and renewed asynchronously",
        errors,
    );
    function.check_return(
        Some(
            "a #[with_lock] function must return `Result<T, E>` where `E: From<LockError>`, so \
             that a lock it could not take, or lost, is reported: add a return type",
        ),
        "a #[with_lock] function must return `Result<T, E>` where `E: From<LockError>`, not \
         `impl Trait`",
        errors,
    );
    let ttl = options.ttl.filter(|_| errors.is_empty())?;
    Some(Config {
        target: Target {
            krate: Krate::new(options.krate),
            client: options.client,
            key,
        },
        ttl,
        wait: options.wait.unwrap_or(Millis(0)),
        retry: options.retry.unwrap_or(Millis(50)),
        lease: match options.extend {
            Some(false) => Lease::Fixed,
            Some(true) | None => Lease::Renewed,
        },
        on_lost: options.on_lost.unwrap_or(OnLost::Abort),
        fenced: options.fenced.unwrap_or(false),
    })
}
