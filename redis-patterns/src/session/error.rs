//! What a session operation can fail with.

use crate::error::Error;

/// What a session operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The session was saved by someone else since it was loaded: load it again, apply the
    /// change to what it holds now, and save that.
    #[error(
        "the session was saved by another request since it was loaded (version {loaded}, now \
         {current}); load it again and reapply the change"
    )]
    Conflict {
        /// The version this copy was loaded at.
        loaded: u64,
        /// The version stored now.
        current: u64,
    },
    /// The session no longer exists (it expired, was deleted, rotated or logged out
    /// everywhere); a save never brings it back.
    #[error("the session no longer exists (expired, logged out or rotated); start a new one")]
    Gone,
    /// The serialized data is larger than the limit (`Sessions::max_size`); nothing was
    /// written.
    #[error(
        "the session data is {size} bytes, above the limit of {limit}; keep large data \
         elsewhere and its key in the session, or raise `Sessions::max_size`"
    )]
    TooLarge {
        /// The serialized size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The data could not be serialized, or what is stored no longer deserializes as `T`.
    #[error("the session data could not be (de)serialized as JSON: {0}")]
    Data(#[source] serde_json::Error),
    /// Redis was unreachable, too slow or failing: sessions fail closed.
    #[error(transparent)]
    Backend(#[from] Error),
}
