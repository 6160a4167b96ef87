//! The stampede lock of `stampede = "lock"` (and of background refreshes): its key, and the
//! guard that releases it if a computation is cancelled; and XFetch, the early recomputation of
//! `stampede = "early"`.

use std::sync::Arc;

use crate::backend::Backend;
use crate::client::Client;
use crate::envelope;

/// Releases a stampede lock if the computation is cancelled or panics, instead of leaving the
/// other callers to wait for its TTL.
pub(super) struct StampedeLock<'a> {
    backend: Arc<Backend>,
    pub(super) lock_key: &'a str,
    pub(super) token: &'a str,
    pub(super) armed: bool,
}

impl<'a> StampedeLock<'a> {
    /// The lock `lock_key`, just taken with `token`.
    pub(super) fn new(client: &Client, lock_key: &'a str, token: &'a str) -> Self {
        StampedeLock {
            backend: Arc::clone(&client.inner().backend),
            lock_key,
            token,
            armed: true,
        }
    }
}

impl Drop for StampedeLock<'_> {
    fn drop(&mut self) {
        if self.armed {
            crate::backend::unlock_in_background(
                &self.backend,
                self.lock_key.to_owned(),
                None,
                self.token.to_owned(),
            );
        }
    }
}

/// XFetch (Vattani et al., VLDB 2015): recompute when
/// `now - delta * beta * ln(rand) >= expiry`, with `rand` uniform in (0, 1].
pub(super) fn xfetch_recompute(
    header: envelope::Header,
    beta: f64,
    now_ms: u64,
    uniform: f64,
) -> bool {
    let rand = 1.0 - uniform; // (0, 1]
    let gap = -(f64::from(header.delta_ms)) * beta * rand.ln();
    now_ms as f64 + gap >= header.expires_ms as f64
}

pub(crate) fn lock_key(key: &str) -> String {
    let mut lock = String::with_capacity(key.len() + 5);
    lock.push_str(key);
    lock.push_str(":lock");
    lock
}
