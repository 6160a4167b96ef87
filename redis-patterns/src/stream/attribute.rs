//! What `#[stream_consumer]` and `#[job]` expand into: a `const` [`Consumer`](super::Consumer)
//! or [`Worker`](crate::queue::Worker) built from its spec and a wrapper of the function, and
//! compile-time checks of the function's types at the tokens that wrote them.

use std::fmt::Display;

use serde::de::DeserializeOwned;

/// A handler's return type: `Result<(), E>` with an error that displays (its text goes to
/// the dead-letter stream).
#[diagnostic::on_unimplemented(
    message = "a #[stream_consumer] or #[job] handler must return `Result<(), E>` with `E: Display`, not `{Self}`",
    label = "the handler's outcome: `Ok(())` is done with the message, `Err(e)` retries it",
    note = "the error's text is recorded with the message when it is given up on"
)]
pub trait HandlerReturn {
    /// The outcome as the consumer records it.
    fn outcome(self) -> Result<(), String>;
}

impl<E: Display> HandlerReturn for Result<(), E> {
    #[inline]
    fn outcome(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

/// A handler's event type: owned, decodable from JSON, and sendable to the handler's task.
#[diagnostic::on_unimplemented(
    message = "the message of a #[stream_consumer] or #[job] handler must be an owned type that implements `serde::de::DeserializeOwned + Send + 'static`, not `{Self}`",
    label = "decoded from each message's JSON",
    note = "derive `serde::Deserialize` for it, and take it by value (not by reference)"
)]
pub trait EventType: DeserializeOwned + Send + 'static {}

impl<T: DeserializeOwned + Send + 'static> EventType for T {}

/// Checks, where the event type is written, that a consumer can decode and move it.
#[inline]
pub const fn check_event<T: EventType>() {}
