//! Why the server refused a subscription, and the error each subscriber gets for it.

use super::Kind;

/// Why the server refused to subscribe a name: its subscribers are told, and the name is
/// dropped; the other names of the connection go on.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub(super) denial: Denial,
    pub(super) kind: Kind,
    /// The server's reply.
    pub(super) message: String,
}

/// What kind of refusal the server's reply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denial {
    /// The ACL user lacks a permission (`NOPERM`).
    Permission,
    /// Any other error reply: a server without the command (`SSUBSCRIBE` before Redis 7.0).
    Other,
}

impl Refusal {
    /// The refusal an error reply to subscribing `kind` names is, if it is one; `None` for
    /// failures of the connection or the topology, which are retried.
    pub(crate) fn of(e: &redis::RedisError, kind: Kind) -> Option<Refusal> {
        use redis::{ErrorKind, ServerErrorKind};
        let (denial, code) = match e.kind() {
            ErrorKind::Server(ServerErrorKind::NoPerm) => (Denial::Permission, "NOPERM"),
            ErrorKind::Server(ServerErrorKind::ResponseError) => (Denial::Other, "ERR"),
            _ => return None,
        };
        let message = match e.detail() {
            Some(detail) => format!("{code} {detail}"),
            None => format!("{code} ({e})"),
        };
        Some(Refusal {
            denial,
            kind,
            message,
        })
    }
}

impl From<Refusal> for crate::error::Error {
    fn from(refusal: Refusal) -> Self {
        let Refusal {
            denial,
            kind,
            message,
        } = refusal;
        if denial == Denial::Permission {
            // Redis (6.2 and 7) names the channel in a channel's refusal, the command in a
            // command's.
            let grant = if message.contains("channel") {
                "the user's `&` channel patterns must include it"
            } else {
                "the user needs the `+@pubsub` commands"
            };
            return crate::error::Error::Permission(format!("{message}; {grant}"));
        }
        let hint = match kind {
            Kind::Shard => "; sharded topics need Redis 7.0 or later",
            Kind::Channel | Kind::Pattern => "",
        };
        crate::error::Error::Config(format!("Redis refused the subscription ({message}){hint}"))
    }
}
