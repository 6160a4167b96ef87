//! Why the server refused a subscription, and the error each subscriber gets for it.

use super::Kind;

/// Why the server refused to subscribe a name: its subscribers are told, and the name is
/// dropped; the other names of the connection go on.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    /// The ACL user lacks a permission (`NOPERM`), else any other error reply (a server
    /// without the command: `SSUBSCRIBE` before Redis 7.0).
    pub(super) permission: bool,
    pub(super) kind: Kind,
    /// The server's reply.
    pub(super) message: String,
}

impl Refusal {
    /// The refusal an error reply to subscribing `kind` names is, if it is one; `None` for
    /// failures of the connection or the topology, which are retried.
    pub(crate) fn of(e: &redis::RedisError, kind: Kind) -> Option<Refusal> {
        use redis::{ErrorKind, ServerErrorKind};
        let (permission, code) = match e.kind() {
            ErrorKind::Server(ServerErrorKind::NoPerm) => (true, "NOPERM"),
            ErrorKind::Server(ServerErrorKind::ResponseError) => (false, "ERR"),
            _ => return None,
        };
        let message = match e.detail() {
            Some(detail) => format!("{code} {detail}"),
            None => format!("{code} ({e})"),
        };
        Some(Refusal {
            permission,
            kind,
            message,
        })
    }
}

impl From<Refusal> for crate::error::Error {
    fn from(refusal: Refusal) -> Self {
        let Refusal {
            permission,
            kind,
            message,
        } = refusal;
        if permission {
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
